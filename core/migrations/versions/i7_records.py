"""call records and exports: indexes for the records list across tasks

Revision ID: i7_records
Revises: i7_numbers
Create Date: 2026-12-01 20:40:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op

revision = 'i7_records'
down_revision = 'i7_numbers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.create_index('ix_call_account_grade_created',
                              ['account_id', 'grade', 'created_at'], unique=False)
        batch_op.create_index('ix_call_account_status_created',
                              ['account_id', 'status', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_account_status_created')
        batch_op.drop_index('ix_call_account_grade_created')
