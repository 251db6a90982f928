"""dialer: redial rules and timeouts on tasks; live state, controller and announcement on calls

Revision ID: 0003_dialer
Revises: i9_transfer
Create Date: 2026-11-23 23:05:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003_dialer'
down_revision = 'i9_transfer'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_attempts', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('redial_statuses', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('redial_interval_s', sa.Integer(), server_default='600', nullable=False))
        batch_op.add_column(sa.Column('ring_timeout_s', sa.Integer(), server_default='40', nullable=False))
        batch_op.add_column(sa.Column('max_call_s', sa.Integer(), server_default='600', nullable=False))

    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('controller', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('state', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('announcement', sa.String(length=32), nullable=True))
        batch_op.create_index('ix_call_controller_state', ['controller', 'state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_controller_state')
        batch_op.drop_column('announcement')
        batch_op.drop_column('state')
        batch_op.drop_column('controller')

    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_column('max_call_s')
        batch_op.drop_column('ring_timeout_s')
        batch_op.drop_column('redial_interval_s')
        batch_op.drop_column('redial_statuses')
        batch_op.drop_column('max_attempts')
