"""discovery: scan jobs and the data map

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 22:26:36.849633
"""
from alembic import op
import sqlalchemy as sa
import qorgau.core.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scan_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('sources', sa.JSON(), nullable=False),
    sa.Column('sealed_sources', sa.LargeBinary(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('created_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('worker', sa.String(length=100), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('bytes_scanned', sa.BigInteger(), nullable=False),
    sa.Column('rows_scanned', sa.BigInteger(), nullable=False),
    sa.Column('sources_done', sa.Integer(), nullable=False),
    sa.Column('sources_failed', sa.Integer(), nullable=False),
    sa.Column('findings', sa.BigInteger(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_scan_jobs_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scan_jobs'))
    )
    with op.batch_alter_table('scan_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scan_jobs_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index('ix_scan_jobs_status_created', ['status', 'created_at'], unique=False)

    op.create_table('data_sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('locator', sa.String(length=1000), nullable=False),
    sa.Column('first_seen_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_scanned_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_job_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('encoding', sa.String(length=40), nullable=True),
    sa.Column('bytes_scanned', sa.BigInteger(), nullable=False),
    sa.Column('rows_scanned', sa.BigInteger(), nullable=False),
    sa.Column('findings', sa.BigInteger(), nullable=False),
    sa.Column('identifying', sa.Boolean(), nullable=False),
    sa.Column('sensitive', sa.Boolean(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['last_job_id'], ['scan_jobs.id'], name=op.f('fk_data_sources_last_job_id_scan_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_data_sources_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_sources')),
    sa.UniqueConstraint('organization_id', 'locator', name=op.f('uq_data_sources_organization_id'))
    )
    with op.batch_alter_table('data_sources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_sources_organization_id'), ['organization_id'], unique=False)

    op.create_table('data_map_fields',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=500), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('special', sa.String(length=20), nullable=True),
    sa.Column('entity_type', sa.String(length=40), nullable=True),
    sa.Column('rule', sa.String(length=200), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('findings', sa.BigInteger(), nullable=False),
    sa.Column('first_seen_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_data_map_fields_organization_id_organizations')),
    sa.ForeignKeyConstraint(['source_id'], ['data_sources.id'], name=op.f('fk_data_map_fields_source_id_data_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_map_fields')),
    sa.UniqueConstraint('source_id', 'field', name=op.f('uq_data_map_fields_source_id'))
    )
    with op.batch_alter_table('data_map_fields', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_map_fields_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_data_map_fields_source_id'), ['source_id'], unique=False)

    op.create_table('data_map_counts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('field_id', sa.Integer(), nullable=False),
    sa.Column('entity_type', sa.String(length=40), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('max_score', sa.Float(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['field_id'], ['data_map_fields.id'], name=op.f('fk_data_map_counts_field_id_data_map_fields'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_data_map_counts_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_map_counts')),
    sa.UniqueConstraint('field_id', 'entity_type', name=op.f('uq_data_map_counts_field_id'))
    )
    with op.batch_alter_table('data_map_counts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_map_counts_field_id'), ['field_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_data_map_counts_organization_id'), ['organization_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('data_map_counts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_map_counts_organization_id'))
        batch_op.drop_index(batch_op.f('ix_data_map_counts_field_id'))

    op.drop_table('data_map_counts')
    with op.batch_alter_table('data_map_fields', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_map_fields_source_id'))
        batch_op.drop_index(batch_op.f('ix_data_map_fields_organization_id'))

    op.drop_table('data_map_fields')
    with op.batch_alter_table('data_sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_sources_organization_id'))

    op.drop_table('data_sources')
    with op.batch_alter_table('scan_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_scan_jobs_status_created')
        batch_op.drop_index(batch_op.f('ix_scan_jobs_organization_id'))

    op.drop_table('scan_jobs')
