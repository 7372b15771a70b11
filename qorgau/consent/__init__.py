"""Consent (L-PD-CONSENT, L-PD-CONSENT-FIELDS, L-PD-WITHDRAW, L-PD-TRANSFER): purposes, counterparties,
consents with the eight Art.8 p.4 fields, the decision point, withdrawal that stops processing at once,
processor notifications through a transactional outbox, transfers and signed receipts. See
``docs/consent.md``.

The service API is :mod:`qorgau.consent.service` (:class:`~qorgau.consent.service.ConsentService`); the
tables are in :mod:`qorgau.consent.models` and :mod:`qorgau.consent.outbox`.
"""
