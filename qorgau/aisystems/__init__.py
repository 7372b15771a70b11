"""The AI systems register: the questionnaire, classification by the rule packs (L-AI-RISK, L-AI-AUTONOMY,
L-AI-PROHIBITED), obligations, audits and trusted lists (L-AI-TRUSTED), the regulatory sandbox and the maturity
index ([plan] L-AI-SANDBOX, L-AI-MATURITY), and the public register."""
