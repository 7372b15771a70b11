"""consent: counterparties, purposes, consents and their history, legal bases, withdrawals, transfers,
processor notifications, and the generic transactional outbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa
import qorgau.core.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consent_counterparties',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('bin', sa.String(length=12), nullable=True),
    sa.Column('foreign_registration', sa.String(length=100), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('webhook_url', sa.String(length=2000), nullable=True),
    sa.Column('webhook_secret_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('token_prefix', sa.String(length=16), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_consent_counterparties_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_counterparties')),
    sa.UniqueConstraint('organization_id', 'name', name='uq_consent_counterparties_org_name'),
    sa.UniqueConstraint('token_prefix', name=op.f('uq_consent_counterparties_token_prefix'))
    )
    with op.batch_alter_table('consent_counterparties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_counterparties_organization_id'), ['organization_id'], unique=False)

    op.create_table('consent_purposes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('parent', sa.String(length=64), nullable=True),
    sa.Column('name_kk', sa.String(length=300), nullable=False),
    sa.Column('name_ru', sa.String(length=300), nullable=False),
    sa.Column('name_en', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_consent_purposes_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_purposes')),
    sa.UniqueConstraint('organization_id', 'code', name='uq_consent_purposes_org_code')
    )
    with op.batch_alter_table('consent_purposes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_purposes_organization_id'), ['organization_id'], unique=False)

    op.create_table('outbox_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('secret_sealed', sa.LargeBinary(), nullable=False),
    sa.Column('source_type', sa.String(length=40), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('first_attempt_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_outbox_messages_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbox_messages_idempotency_key'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_messages_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index('ix_outbox_messages_status_next', ['status', 'next_attempt_at'], unique=False)

    op.create_table('consent_consents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('receipt_id', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('data_categories', sa.JSON(), nullable=False),
    sa.Column('valid_until', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('third_party_transfer', sa.Boolean(), nullable=False),
    sa.Column('counterparty_ids', sa.JSON(), nullable=False),
    sa.Column('cross_border', sa.Boolean(), nullable=False),
    sa.Column('countries', sa.JSON(), nullable=False),
    sa.Column('public_sources', sa.Boolean(), nullable=False),
    sa.Column('other', sa.Text(), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('evidence_ref', sa.String(length=300), nullable=True),
    sa.Column('evidence_sha256', sa.String(length=64), nullable=True),
    sa.Column('notify_on_transfer', sa.Boolean(), nullable=False),
    sa.Column('sensitive', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('given_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('given_by', sa.String(length=64), nullable=False),
    sa.Column('withdrawn_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('superseded_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_consent_consents_organization_id_organizations')),
    sa.ForeignKeyConstraint(['subject_id'], ['vault_subjects.id'], name=op.f('fk_consent_consents_subject_id_vault_subjects')),
    sa.ForeignKeyConstraint(['superseded_by_id'], ['consent_consents.id'], name=op.f('fk_consent_consents_superseded_by_id_consent_consents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_consents')),
    sa.UniqueConstraint('receipt_id', name=op.f('uq_consent_consents_receipt_id'))
    )
    with op.batch_alter_table('consent_consents', schema=None) as batch_op:
        batch_op.create_index('ix_consent_consents_org_purpose_status', ['organization_id', 'purpose', 'status'], unique=False)
        batch_op.create_index('ix_consent_consents_org_subject_purpose', ['organization_id', 'subject_id', 'purpose'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_consents_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_consents_subject_id'), ['subject_id'], unique=False)

    op.create_table('consent_legal_bases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('reference', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('valid_from', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('valid_until', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=64), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_consent_legal_bases_organization_id_organizations')),
    sa.ForeignKeyConstraint(['subject_id'], ['vault_subjects.id'], name=op.f('fk_consent_legal_bases_subject_id_vault_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_legal_bases'))
    )
    with op.batch_alter_table('consent_legal_bases', schema=None) as batch_op:
        batch_op.create_index('ix_consent_legal_bases_org_purpose', ['organization_id', 'purpose'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_legal_bases_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_legal_bases_subject_id'), ['subject_id'], unique=False)

    op.create_table('consent_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consent_id', sa.Integer(), nullable=False),
    sa.Column('at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['consent_id'], ['consent_consents.id'], name=op.f('fk_consent_events_consent_id_consent_consents')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_consent_events_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_events'))
    )
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_events_consent_id'), ['consent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_events_organization_id'), ['organization_id'], unique=False)

    op.create_table('consent_transfers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consent_id', sa.Integer(), nullable=False),
    sa.Column('counterparty_id', sa.Integer(), nullable=False),
    sa.Column('data_categories', sa.JSON(), nullable=False),
    sa.Column('transferred_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('cross_border', sa.Boolean(), nullable=False),
    sa.Column('notify_subject', sa.Boolean(), nullable=False),
    sa.Column('notify_deadline', sa.Date(), nullable=True),
    sa.Column('subject_notified_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('subject_notified_by', sa.String(length=64), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['consent_id'], ['consent_consents.id'], name=op.f('fk_consent_transfers_consent_id_consent_consents')),
    sa.ForeignKeyConstraint(['counterparty_id'], ['consent_counterparties.id'], name=op.f('fk_consent_transfers_counterparty_id_consent_counterparties')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_consent_transfers_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_transfers'))
    )
    with op.batch_alter_table('consent_transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_transfers_consent_id'), ['consent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_transfers_counterparty_id'), ['counterparty_id'], unique=False)
        batch_op.create_index('ix_consent_transfers_org_pending', ['organization_id', 'notify_subject', 'subject_notified_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_transfers_organization_id'), ['organization_id'], unique=False)

    op.create_table('consent_withdrawals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consent_id', sa.Integer(), nullable=False),
    sa.Column('withdrawn_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=True),
    sa.Column('refused', sa.Boolean(), nullable=False),
    sa.Column('legal_basis_id', sa.Integer(), nullable=True),
    sa.Column('shredded', sa.Boolean(), nullable=False),
    sa.Column('erasure_certificate_id', sa.String(length=32), nullable=True),
    sa.Column('receipt_id', sa.String(length=40), nullable=False),
    sa.Column('receipt', sa.Text(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['consent_id'], ['consent_consents.id'], name=op.f('fk_consent_withdrawals_consent_id_consent_consents')),
    sa.ForeignKeyConstraint(['legal_basis_id'], ['consent_legal_bases.id'], name=op.f('fk_consent_withdrawals_legal_basis_id_consent_legal_bases')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_consent_withdrawals_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_withdrawals')),
    sa.UniqueConstraint('consent_id', name='uq_consent_withdrawals_consent_id'),
    sa.UniqueConstraint('organization_id', 'idempotency_key', name='uq_consent_withdrawals_org_key'),
    sa.UniqueConstraint('receipt_id', name=op.f('uq_consent_withdrawals_receipt_id'))
    )
    with op.batch_alter_table('consent_withdrawals', schema=None) as batch_op:
        batch_op.create_index('ix_consent_withdrawals_org_at', ['organization_id', 'withdrawn_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_withdrawals_organization_id'), ['organization_id'], unique=False)

    op.create_table('consent_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consent_id', sa.Integer(), nullable=False),
    sa.Column('withdrawal_id', sa.Integer(), nullable=False),
    sa.Column('counterparty_id', sa.Integer(), nullable=False),
    sa.Column('outbox_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('confirmed_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_by', sa.String(length=64), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['consent_id'], ['consent_consents.id'], name=op.f('fk_consent_notifications_consent_id_consent_consents')),
    sa.ForeignKeyConstraint(['counterparty_id'], ['consent_counterparties.id'], name=op.f('fk_consent_notifications_counterparty_id_consent_counterparties')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_consent_notifications_organization_id_organizations')),
    sa.ForeignKeyConstraint(['outbox_message_id'], ['outbox_messages.id'], name=op.f('fk_consent_notifications_outbox_message_id_outbox_messages')),
    sa.ForeignKeyConstraint(['withdrawal_id'], ['consent_withdrawals.id'], name=op.f('fk_consent_notifications_withdrawal_id_consent_withdrawals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_notifications')),
    sa.UniqueConstraint('withdrawal_id', 'counterparty_id', name='uq_consent_notifications_withdrawal_cp')
    )
    with op.batch_alter_table('consent_notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_notifications_consent_id'), ['consent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_notifications_counterparty_id'), ['counterparty_id'], unique=False)
        batch_op.create_index('ix_consent_notifications_org_open', ['organization_id', 'confirmed_at', 'deadline'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_notifications_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_notifications_withdrawal_id'), ['withdrawal_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('consent_notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_notifications_withdrawal_id'))
        batch_op.drop_index(batch_op.f('ix_consent_notifications_organization_id'))
        batch_op.drop_index('ix_consent_notifications_org_open')
        batch_op.drop_index(batch_op.f('ix_consent_notifications_counterparty_id'))
        batch_op.drop_index(batch_op.f('ix_consent_notifications_consent_id'))

    op.drop_table('consent_notifications')
    with op.batch_alter_table('consent_withdrawals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_withdrawals_organization_id'))
        batch_op.drop_index('ix_consent_withdrawals_org_at')

    op.drop_table('consent_withdrawals')
    with op.batch_alter_table('consent_transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_transfers_organization_id'))
        batch_op.drop_index('ix_consent_transfers_org_pending')
        batch_op.drop_index(batch_op.f('ix_consent_transfers_counterparty_id'))
        batch_op.drop_index(batch_op.f('ix_consent_transfers_consent_id'))

    op.drop_table('consent_transfers')
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_events_organization_id'))
        batch_op.drop_index(batch_op.f('ix_consent_events_consent_id'))

    op.drop_table('consent_events')
    with op.batch_alter_table('consent_legal_bases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_legal_bases_subject_id'))
        batch_op.drop_index(batch_op.f('ix_consent_legal_bases_organization_id'))
        batch_op.drop_index('ix_consent_legal_bases_org_purpose')

    op.drop_table('consent_legal_bases')
    with op.batch_alter_table('consent_consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_consents_subject_id'))
        batch_op.drop_index(batch_op.f('ix_consent_consents_organization_id'))
        batch_op.drop_index('ix_consent_consents_org_subject_purpose')
        batch_op.drop_index('ix_consent_consents_org_purpose_status')

    op.drop_table('consent_consents')
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_status_next')
        batch_op.drop_index(batch_op.f('ix_outbox_messages_organization_id'))

    op.drop_table('outbox_messages')
    with op.batch_alter_table('consent_purposes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_purposes_organization_id'))

    op.drop_table('consent_purposes')
    with op.batch_alter_table('consent_counterparties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_counterparties_organization_id'))

    op.drop_table('consent_counterparties')
