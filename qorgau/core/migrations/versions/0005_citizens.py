"""citizens: verified citizen identities, enrollment codes, redemption throttle, subject links

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa
import qorgau.core.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('citizen_identities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('iin_index', sa.LargeBinary(length=32), nullable=False),
    sa.Column('iin_sealed', sa.LargeBinary(), nullable=False),
    sa.Column('method', sa.String(length=40), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('verified_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_citizen_identities_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_citizen_identities')),
    sa.UniqueConstraint('iin_index', name=op.f('uq_citizen_identities_iin_index')),
    sa.UniqueConstraint('user_id', name=op.f('uq_citizen_identities_user_id'))
    )
    op.create_table('citizen_enrollments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('selector', sa.String(length=8), nullable=False),
    sa.Column('verifier_hash', sa.String(length=64), nullable=False),
    sa.Column('iin_index', sa.LargeBinary(length=32), nullable=False),
    sa.Column('iin_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('issued_by', sa.String(length=64), nullable=False),
    sa.Column('issuer_organization_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('redeemed_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('redeemed_by', sa.Integer(), nullable=True),
    sa.Column('revoked_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['issuer_organization_id'], ['organizations.id'], name=op.f('fk_citizen_enrollments_issuer_organization_id_organizations')),
    sa.ForeignKeyConstraint(['redeemed_by'], ['users.id'], name=op.f('fk_citizen_enrollments_redeemed_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_citizen_enrollments_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_citizen_enrollments')),
    sa.UniqueConstraint('selector', name=op.f('uq_citizen_enrollments_selector'))
    )
    with op.batch_alter_table('citizen_enrollments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_citizen_enrollments_iin_index'), ['iin_index'], unique=False)
        batch_op.create_index(batch_op.f('ix_citizen_enrollments_issuer_organization_id'), ['issuer_organization_id'], unique=False)

    op.create_table('citizen_redeem_throttle',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_citizen_redeem_throttle_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_citizen_redeem_throttle'))
    )
    op.create_table('citizen_subject_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('created_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_citizen_subject_links_organization_id_organizations')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_citizen_subject_links_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_citizen_subject_links')),
    sa.UniqueConstraint('user_id', 'organization_id', 'subject_id', name='uq_citizen_subject_links_user_org_subject')
    )
    with op.batch_alter_table('citizen_subject_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_citizen_subject_links_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('citizen_subject_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_citizen_subject_links_user_id'))
    op.drop_table('citizen_subject_links')
    op.drop_table('citizen_redeem_throttle')
    with op.batch_alter_table('citizen_enrollments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_citizen_enrollments_issuer_organization_id'))
        batch_op.drop_index(batch_op.f('ix_citizen_enrollments_iin_index'))
    op.drop_table('citizen_enrollments')
    op.drop_table('citizen_identities')
