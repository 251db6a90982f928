"""transfer to agents: who took a call and their screen-pop notes

Revision ID: i9_transfer
Revises: i10_after_call
Create Date: 2026-11-23 22:57:55.839467
"""
import sqlalchemy as sa
from alembic import op

revision = 'i9_transfer'
down_revision = 'i10_after_call'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('agent_notes', sa.Text(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_call_agent_id_user'), 'user', ['agent_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_call_agent_id_user'), type_='foreignkey')
        batch_op.drop_column('agent_notes')
        batch_op.drop_column('agent_id')
