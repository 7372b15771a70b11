"""Every table qorgau has, imported in one place so Alembic and tests see the whole schema.

Each module keeps its models in its own package; this file only imports them.
"""

from .audit import AuditEntry, AuditNode, AuditState, AuditTreeHead
from .auth import ApiKey, Organization, User, WebSession
from .db import Base
from .keys import DataKey
from .throttle import LoginAttempts  # noqa: F401  (login throttling)
from qorgau.discovery.models import DataMapCount, DataMapField, DataSource, ScanJob  # noqa: E402  (after core)
from qorgau.vault.models import ErasureCertificateRecord, VaultLookup, VaultPseudonym, VaultSubject  # noqa: E402
from qorgau.consent.models import Consent, ConsentEvent, ConsentWithdrawal, Counterparty, DecisionVersion, ErasedLookup, LegalBasis, OrganizationPurpose, ProcessorNotification, Transfer  # noqa: E402,F401
from qorgau.consent.outbox import OutboxMessage  # noqa: E402,F401
from qorgau.consent.citizens import CitizenEnrollment, CitizenIdentity, CitizenRedeemThrottle, CitizenSubjectLink  # noqa: E402,F401
from qorgau.aisystems.models import AiAudit, AiClassification, AiObligation, AiSystem, AiSystemProfile, MaturitySnapshot, RulePackVersion, SandboxApplication, SandboxMember, TrustedListEntry  # noqa: E402,F401
from qorgau.oversight.models import AiDecision, DecisionObjection, DecisionOpening, DecisionReview, DecisionTypePolicy  # noqa: E402,F401
from qorgau.leaks.models import LeakCitizenIdentifier, LeakIncident, LeakIncidentEvent, LeakNotification, LeakTakedown, LeakUpload, LeakVerification  # noqa: E402,F401
from qorgau.provenance.models import LabelAuthority, LabelRecord, LabelSigner  # noqa: E402,F401

metadata = Base.metadata

__all__ = ["ApiKey", "AuditEntry", "AuditNode", "AuditState", "AuditTreeHead", "DataKey", "DataMapCount",
           "DataMapField", "DataSource", "Organization", "ScanJob", "User", "WebSession", "metadata"]
