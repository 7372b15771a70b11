"""consent decisions: per-subject decision versions (validated decision cache), erased-identifier tombstones

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

Backfill: one version row (version 1) per (organization, subject) that has a consent or a legal basis
naming it, and one row with subject_id 0 per organization that has a legal basis for every subject. A
missing row only means "never cached" (the decision point then always reads the consents), so the backfill
is for speed, not for correctness. Tombstones cannot be backfilled: the vault deleted the blind indexes of
subjects shredded before this revision.
"""
from alembic import op
import sqlalchemy as sa
import qorgau.core.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consent_decision_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_consent_decision_versions_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_decision_versions')),
    sa.UniqueConstraint('organization_id', 'subject_id', name='uq_consent_decision_versions_org_subject')
    )
    with op.batch_alter_table('consent_decision_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_decision_versions_organization_id'), ['organization_id'], unique=False)

    op.create_table('consent_erased_lookups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_type', sa.String(length=40), nullable=False),
    sa.Column('blind_index', sa.LargeBinary(length=32), nullable=False),
    sa.Column('erased_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_consent_erased_lookups_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_erased_lookups')),
    sa.UniqueConstraint('organization_id', 'entity_type', 'blind_index', name='uq_consent_erased_lookups_org_type_index')
    )
    with op.batch_alter_table('consent_erased_lookups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_erased_lookups_organization_id'), ['organization_id'], unique=False)

    # Backfill the versions of every subject that has a consent or a legal basis naming it, and the operator
    # row (subject 0) where a legal basis covers every subject.
    op.execute(
        "INSERT INTO consent_decision_versions (organization_id, subject_id, version) "
        "SELECT organization_id, subject_id, 1 FROM ("
        "SELECT organization_id, subject_id FROM consent_consents "
        "UNION SELECT organization_id, subject_id FROM consent_legal_bases WHERE subject_id IS NOT NULL "
        "UNION SELECT organization_id, 0 FROM consent_legal_bases WHERE subject_id IS NULL"
        ") AS known"
    )


def downgrade() -> None:
    with op.batch_alter_table('consent_erased_lookups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_erased_lookups_organization_id'))

    op.drop_table('consent_erased_lookups')
    with op.batch_alter_table('consent_decision_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_decision_versions_organization_id'))

    op.drop_table('consent_decision_versions')
