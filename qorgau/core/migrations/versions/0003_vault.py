"""vault: subjects, lookups, pseudonyms, erasure certificates

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa
import qorgau.core.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('vault_subjects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=True),
    sa.Column('type_mask', sa.Integer(), nullable=False),
    sa.Column('has_invalid', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('erased_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_vault_subjects_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vault_subjects')),
    sa.UniqueConstraint('public_id', name=op.f('uq_vault_subjects_public_id'))
    )
    with op.batch_alter_table('vault_subjects', schema=None) as batch_op:
        batch_op.create_index('ix_vault_subjects_org_status', ['organization_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_vault_subjects_organization_id'), ['organization_id'], unique=False)

    op.create_table('vault_erasure_certificates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('pseudonym', sa.String(length=32), nullable=False),
    sa.Column('domain', sa.String(length=40), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('audit_entry_id', sa.BigInteger(), nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('erased_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_vault_erasure_certificates_organization_id_organizations')),
    sa.ForeignKeyConstraint(['subject_id'], ['vault_subjects.id'], name=op.f('fk_vault_erasure_certificates_subject_id_vault_subjects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vault_erasure_certificates')),
    sa.UniqueConstraint('certificate_id', name=op.f('uq_vault_erasure_certificates_certificate_id'))
    )
    with op.batch_alter_table('vault_erasure_certificates', schema=None) as batch_op:
        batch_op.create_index('ix_vault_erasure_certificates_org_erased', ['organization_id', 'erased_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_vault_erasure_certificates_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vault_erasure_certificates_subject_id'), ['subject_id'], unique=False)

    op.create_table('vault_lookups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity_type', sa.String(length=40), nullable=False),
    sa.Column('blind_index', sa.LargeBinary(length=32), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('valid', sa.Boolean(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_vault_lookups_organization_id_organizations')),
    sa.ForeignKeyConstraint(['subject_id'], ['vault_subjects.id'], name=op.f('fk_vault_lookups_subject_id_vault_subjects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vault_lookups')),
    sa.UniqueConstraint('organization_id', 'entity_type', 'blind_index', name='uq_vault_lookups_org_type_index')
    )
    with op.batch_alter_table('vault_lookups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vault_lookups_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vault_lookups_subject_id'), ['subject_id'], unique=False)

    op.create_table('vault_pseudonyms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain', sa.String(length=40), nullable=False),
    sa.Column('pseudonym', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('created_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_vault_pseudonyms_organization_id_organizations')),
    sa.ForeignKeyConstraint(['subject_id'], ['vault_subjects.id'], name=op.f('fk_vault_pseudonyms_subject_id_vault_subjects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vault_pseudonyms')),
    sa.UniqueConstraint('organization_id', 'domain', 'pseudonym', name='uq_vault_pseudonyms_org_domain_pseudonym'),
    sa.UniqueConstraint('subject_id', 'domain', name='uq_vault_pseudonyms_subject_domain')
    )
    with op.batch_alter_table('vault_pseudonyms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vault_pseudonyms_organization_id'), ['organization_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('vault_pseudonyms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vault_pseudonyms_organization_id'))

    op.drop_table('vault_pseudonyms')
    with op.batch_alter_table('vault_lookups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vault_lookups_subject_id'))
        batch_op.drop_index(batch_op.f('ix_vault_lookups_organization_id'))

    op.drop_table('vault_lookups')
    with op.batch_alter_table('vault_erasure_certificates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vault_erasure_certificates_subject_id'))
        batch_op.drop_index(batch_op.f('ix_vault_erasure_certificates_organization_id'))
        batch_op.drop_index('ix_vault_erasure_certificates_org_erased')

    op.drop_table('vault_erasure_certificates')
    with op.batch_alter_table('vault_subjects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vault_subjects_organization_id'))
        batch_op.drop_index('ix_vault_subjects_org_status')

    op.drop_table('vault_subjects')
