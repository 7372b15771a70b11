"""The identity vault (L-PD-SPLIT): identifiers apart from the data, encrypted per subject, pseudonyms,
blind indexes, controlled re-identification and crypto-shredding. See ``docs/vault.md``.

The service API is :mod:`qorgau.vault.service` (:class:`Vault`, :func:`vault_for`); the shapes other modules
depend on are re-exported here.
"""

from .certificates import CertificateVerification, ErasureCertificate, verify_certificate
from .service import (
    LOOKUP_TYPES,
    REIDENTIFY_ROLES,
    Identity,
    ReidentificationCheck,
    ReidentificationRefused,
    ReidentificationRequest,
    RowProblem,
    SubjectErased,
    SubjectRecord,
    Token,
    UnknownPseudonym,
    Vault,
    register_reidentification_check,
    vault_for,
)

__all__ = [
    "LOOKUP_TYPES", "REIDENTIFY_ROLES", "CertificateVerification", "ErasureCertificate", "Identity",
    "ReidentificationCheck", "ReidentificationRefused", "ReidentificationRequest", "RowProblem", "SubjectErased",
    "SubjectRecord", "Token", "UnknownPseudonym", "Vault", "register_reidentification_check", "vault_for",
    "verify_certificate",
]
