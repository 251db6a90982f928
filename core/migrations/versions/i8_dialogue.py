"""dialogue: grade reasons on calls, uploaded script prompts

Revision ID: i8_dialogue
Revises: 0003_dialer
Create Date: 2026-11-23 23:30:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.models.base

revision = 'i8_dialogue'
down_revision = '0003_dialer'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grade_reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default='[]', nullable=False))

    op.create_table('script_prompt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('script_id', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=120), nullable=False),
    sa.Column('file_name', sa.String(length=160), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('created_at', core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_script_prompt_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['script_id'], ['script.id'], name=op.f('fk_script_prompt_script_id_script'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_script_prompt')),
    sa.UniqueConstraint('account_id', 'file_name', name=op.f('uq_script_prompt_account_id'))
    )
    with op.batch_alter_table('script_prompt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_script_prompt_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_script_prompt_script_id'), ['script_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('script_prompt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_script_prompt_script_id'))
        batch_op.drop_index(batch_op.f('ix_script_prompt_account_id'))
    op.drop_table('script_prompt')

    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_column('grade_reasons')
