"""The legal deadlines other modules apply, read from the rule packs instead of being hard-coded.

Consent (L-PD-WITHDRAW, L-PD-TRANSFER), oversight (L-PD-AUTO) and the leak register (L-PD-BREACH) ask here
how many working days the law gives on a day; the answer is the ``deadline`` rule in force then, under the
law, or under the stricter proposals when the deployment turned them on (``rules_stricter_profile``).
"""

from __future__ import annotations

from datetime import date

from .engine import rulebook

# The deadline codes the packs define (qorgau/rules/packs/kz/pd-law.yaml); a test checks each is in force.
WITHDRAWAL_STOP = "pd.withdrawal_stop"            # L-PD-WITHDRAW: 15 working days (stricter: immediately)
OBJECTION_DECISION = "pd.objection_decision"      # L-PD-AUTO: 3 working days
BREACH_NOTICE = "pd.breach_notice"                # L-PD-BREACH: 1 working day from detection
RIGHTS_CORRECTION = "pd.rights_correction"        # L-PD-RIGHTS: 1 working day
TRANSFER_NOTICE = "pd.transfer_notice"            # L-PD-TRANSFER: 10 working days
UNLAWFUL_PUBLIC_REMOVAL = "pd.unlawful_public_removal"  # L-PD-CAT: 1 working day
CODES: tuple[str, ...] = (WITHDRAWAL_STOP, OBJECTION_DECISION, BREACH_NOTICE, RIGHTS_CORRECTION, TRANSFER_NOTICE,
                          UNLAWFUL_PUBLIC_REMOVAL)


def working_days(code: str, on: date, *, stricter: bool = False) -> int:
    """Working days the rule in force on ``on`` gives for ``code`` (NotFound when no rule sets it then)."""
    profiles = ("law", "stricter") if stricter else ("law",)
    return rulebook().deadline(code, as_of=on, profiles=profiles).working_days
