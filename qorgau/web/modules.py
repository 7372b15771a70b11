"""The modules the navigation shows, what each does and the legal rules behind it.

Discovery, the identity vault, consents, AI decisions and the audit log are enabled in this version. The other
pages say — honestly, in the reader's language — what the module will do and which rules of
``LEGAL.md`` it implements; they show no sample data and no buttons that would do nothing. Every text here is an English msgid translated through the
catalogs (``N_`` only marks it for the catalog completeness test).
"""

from __future__ import annotations

from dataclasses import dataclass


def N_(msgid: str) -> str:
    """Mark a string for translation without translating it yet."""
    return msgid


@dataclass(frozen=True)
class LegalRule:
    """A rule of ``LEGAL.md``: its id, where the law says it, and what it requires (msgids)."""

    id: str
    source: str
    summary: str
    planned: bool = False  # [plan]: announced policy, implemented only as a stricter-than-the-law profile


@dataclass(frozen=True)
class Module:
    slug: str
    path: str
    title: str
    summary: str
    features: tuple[str, ...]
    rules: tuple[LegalRule, ...]
    enabled: bool = False
    short_title: str | None = None  # for the navigation bar, when the title is long

    @property
    def nav_title(self) -> str:
        return self.short_title or self.title


RULES = {
    "L-PD-CAT": LegalRule("L-PD-CAT", N_("PD law, Art. 6"), N_(
        "Personal data are publicly available or of restricted access; biometric data are a separate category.")),
    "L-PD-DEPERS": LegalRule("L-PD-DEPERS", N_("PD law, Art. 1(7), Art. 17"), N_(
        "Depersonalized data can no longer be attributed to the subject; research and data sent to the "
        "national AI platform must be depersonalized.")),
    "L-PD-GOV": LegalRule("L-PD-GOV", N_("PD law, Art. 25"), N_(
        "The operator keeps a list of the personal data it processes, a policy and a responsible person.")),
    "L-PD-SPLIT": LegalRule("L-PD-SPLIT", N_("Announced policy (not yet law)"), N_(
        "Split personal data into the data itself and the information that identifies a person."), planned=True),
    "L-PD-RETENTION": LegalRule("L-PD-RETENTION", N_("PD law, Art. 12, 18"), N_(
        "Data are kept until the purpose is achieved and then destroyed, also when consent is missing.")),
    "L-PD-LOCAL": LegalRule("L-PD-LOCAL", N_("PD law, Art. 12 p. 2, Art. 16"), N_(
        "Personal data are stored in a database located in Kazakhstan; cross-border transfer needs a legal basis.")),
    "L-PD-CONSENT": LegalRule("L-PD-CONSENT", N_("PD law, Art. 7–8, 8-1, 8-2"), N_(
        "Consent is given and withdrawn in writing, through the state service, a non-state service or "
        "another verifiable method.")),
    "L-PD-CONSENT-FIELDS": LegalRule("L-PD-CONSENT-FIELDS", N_("PD law, Art. 8 p. 4, Art. 22, Art. 25"), N_(
        "A consent names the operator and its BIN, the subject, the term, transfers to third parties, "
        "cross-border transfer, publication and the list of data; the operator must be able to prove it.")),
    "L-PD-WITHDRAW": LegalRule("L-PD-WITHDRAW", N_("PD law, Art. 8 p. 7"), N_(
        "After withdrawal the operator stops processing within 15 working days or gives a reasoned refusal.")),
    "L-PD-TRANSFER": LegalRule("L-PD-TRANSFER", N_("PD law, Art. 19"), N_(
        "If the consent says so, the subject is told of a transfer to a third party within 10 working days.")),
    "L-PD-AUTO": LegalRule("L-PD-AUTO", N_("PD law, Art. 19-1"), N_(
        "Automated processing that creates, changes or ends a subject's rights needs consent or a law; "
        "an objection is decided within 3 working days.")),
    "L-AI-DECISION": LegalRule("L-AI-DECISION", N_("Digital Code, Art. 43"), N_(
        "A person subject to an automated decision may learn that a system was used, get the key factors "
        "and ask for human review.")),
    "L-AI-USER": LegalRule("L-AI-USER", N_("AI law, Art. 16"), N_(
        "Users may get an explanation of results that affect their rights and the data behind a decision.")),
    "L-AI-AUTONOMY": LegalRule("L-AI-AUTONOMY", N_("AI law, Art. 17 p. 2"), N_(
        "Autonomy is low (a human makes the final choice), medium (a human can correct or cancel) or high.")),
    "L-AI-RISK": LegalRule("L-AI-RISK", N_("AI law, Art. 17 p. 1"), N_(
        "The owner classifies an AI system's risk as minimal, medium or high by the impact of its failure.")),
    "L-AI-TRUSTED": LegalRule("L-AI-TRUSTED", N_("AI law, Art. 19–20; Digital Code, Art. 100 p. 4"), N_(
        "Sectoral bodies publish lists of trusted high-risk systems; entry needs an audit that covers "
        "the training data.")),
    "L-AI-PROHIBITED": LegalRule("L-AI-PROHIBITED", N_("AI law (article number unverified)"), N_(
        "Prohibited: manipulation, exploiting vulnerabilities, social scoring, discrimination, emotion "
        "recognition without consent.")),
    "L-AI-DEF": LegalRule("L-AI-DEF", N_("AI law, Art. 1"), N_(
        "Synthetic results are images, video, audio or text created by AI that imitate a real person or "
        "events that did not happen.")),
    "L-AI-LABEL": LegalRule("L-AI-LABEL", N_("AI law, Art. 21"), N_(
        "Synthetic results are distributed only with a machine-readable marking and a visible warning; "
        "the duty lies on system owners.")),
    "L-FINE-AI": LegalRule("L-FINE-AI", N_("Code of Administrative Offences, Art. 641-1"), N_(
        "Not warning users about misleading synthetic results is fined 15 to 100 MCI.")),
    "L-PD-BREACH": LegalRule("L-PD-BREACH", N_("PD law, Art. 25 p. 2(8)"), N_(
        "A breach is reported to the authorized body within 1 working day of detection.")),
    "L-PD-LEAK-REGISTER": LegalRule("L-PD-LEAK-REGISTER", N_("Announced policy; Digital Code, Art. 17 p. 7"), N_(
        "A unified register of leaked data; leaked data are not open data and are removed immediately."),
        planned=True),
    "L-PD-RIGHTS": LegalRule("L-PD-RIGHTS", N_("PD law, Art. 24–25"), N_(
        "Subjects may access, correct, block and destroy their data; unlawful processing is fixed within "
        "1 working day.")),
}


def _rules(*ids: str) -> tuple[LegalRule, ...]:
    return tuple(RULES[i] for i in ids)


MODULES: tuple[Module, ...] = (
    Module("discovery", "/discovery", N_("Discovery"), N_(
        "Finds personal data in texts, files, tables and databases and maps where it lives."), (
        N_("Recognizes IIN, BIN, phone numbers, e-mail, IBAN, bank cards, passports and ID cards, "
           "with checksum validation."),
        N_("Classifies each finding as identifying information or the data itself."),
        N_("Builds a data map of where personal data are stored, and redacts them on request."),
        N_("Scales to large datasets with Apache Spark using the same detectors."),
    ), _rules("L-PD-CAT", "L-PD-GOV", "L-PD-DEPERS"), enabled=True),
    Module("vault", "/vault", N_("Identity vault"), N_(
        "Keeps identifying information apart from the data, encrypted with each subject's own key."), (
        N_("Moves identifying columns into the identity vault and leaves pseudonyms in the dataset."),
        N_("Looks subjects up by keyed tokens only, never by an unkeyed hash."),
        N_("Re-identifies a subject only for an authorized purpose, and logs it."),
        N_("Crypto-shreds a subject's key when no legal basis remains."),
    ), _rules("L-PD-SPLIT", "L-PD-DEPERS", "L-PD-RETENTION", "L-PD-LOCAL"), enabled=True, short_title=N_("Vault")),
    Module("consents", "/consents", N_("Consents"), N_(
        "Records consents with every field the law requires and answers whether processing is allowed now."), (
        N_("Stores each consent with the fields of Art. 8 p. 4 and issues a receipt."),
        N_("Answers at a decision point: may this operator process this subject's data for this purpose now?"),
        N_("Withdrawal takes effect immediately: the next check is denied."),
        N_("Notifies processors and tracks the legal 15-working-day deadline for their confirmation."),
    ), _rules("L-PD-CONSENT", "L-PD-CONSENT-FIELDS", "L-PD-WITHDRAW", "L-PD-TRANSFER"), enabled=True),
    Module("decisions", "/decisions", N_("AI decisions"), N_(
        "Holds decisions that AI systems propose about people until a human approves them."), (
        N_("Puts each proposed decision in a reviewer queue; it takes effect only after approval."),
        N_("Gives the person an explanation with the key factors of the decision."),
        N_("Accepts objections and tracks the 3-working-day deadline to decide them."),
    ), _rules("L-PD-AUTO", "L-AI-DECISION", "L-AI-USER", "L-AI-AUTONOMY"), enabled=True),
    Module("ai-systems", "/ai-systems", N_("AI systems"), N_(
        "Registers AI systems and classifies them by risk and autonomy with rule packs that cite the law."), (
        N_("Keeps the register of AI systems and a public register for citizens."),
        N_("Classifies risk and autonomy and lists the obligations that follow, each with its article."),
        N_("Flags prohibited functionality and tracks trusted-list audits."),
    ), _rules("L-AI-RISK", "L-AI-AUTONOMY", "L-AI-TRUSTED", "L-AI-PROHIBITED"), enabled=True),
    Module("labels", "/labels", N_("Labels"), N_(
        "Marks synthetic content with a signed machine-readable label and a visible warning."), (
        N_("Attaches signed content credentials (C2PA) to synthetic images, audio, video and text."),
        N_("Adds a visible warning the user perceives without obstruction."),
        N_("Verifies whether a file carries a valid marking."),
    ), _rules("L-AI-DEF", "L-AI-LABEL", "L-FINE-AI"), enabled=True),
    Module("leaks", "/leaks", N_("Leaks"), N_(
        "Receives breach reports and leaked identifiers, and lets citizens check whether they were affected."), (
        N_("Takes incident reports with the 1-working-day deadline for notifying the authorized body."),
        N_("Stores leaked identifiers only as keyed tokens, never in the clear."),
        N_("Lets citizens check whether their data leaked and notifies them."),
        N_("Publishes statistics without personal data."),
    ), _rules("L-PD-BREACH", "L-PD-LEAK-REGISTER", "L-PD-RIGHTS"), enabled=True),
    Module("audit", "/audit", N_("Audit log"), N_(
        "An append-only, signed log of every change, with proofs anyone can check."), (
        N_("Every state change appends an entry to an RFC 6962 Merkle tree."),
        N_("Signed tree heads and inclusion proofs show that no entry was altered or removed."),
    ), _rules("L-PD-CONSENT-FIELDS", "L-PD-GOV"), enabled=True, short_title=N_("Audit")),
)

BY_SLUG = {m.slug: m for m in MODULES}

ROLE_LABELS = {
    "admin": N_("Administrator"),
    "dpo": N_("Data protection officer"),
    "reviewer": N_("Reviewer"),
    "regulator": N_("Regulator"),
    "citizen": N_("Citizen"),
}
