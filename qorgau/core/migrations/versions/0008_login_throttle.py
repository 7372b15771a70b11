"""login throttle: wrong passwords per account name and per client address (keyed hashes), lockouts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 02:20:00.000000
"""
from alembic import op
import sqlalchemy as sa
import qorgau.core.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_throttle',
    sa.Column('scope', sa.String(length=8), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_failure_at', qorgau.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lockouts', sa.Integer(), nullable=False),
    sa.Column('locked_until', qorgau.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('scope', 'key_hash', name=op.f('pk_login_throttle'))
    )
    with op.batch_alter_table('login_throttle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_throttle_last_failure_at'), ['last_failure_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('login_throttle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_throttle_last_failure_at'))
    op.drop_table('login_throttle')
