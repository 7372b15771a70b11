"""AI decisions about people held for human approval (L-PD-AUTO, L-AI-DECISION, L-AI-USER)."""
