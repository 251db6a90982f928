"""number import and status: indexes for the number status table and import retries

Revision ID: i7_numbers
Revises: i7_console
Create Date: 2026-12-01 20:40:00
"""
from alembic import op

revision = 'i7_numbers'
down_revision = 'i7_console'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('task_number', schema=None) as batch_op:
        batch_op.create_index('ix_task_number_task_position', ['task_id', 'position'],
                              unique=False)
        batch_op.create_index('ix_task_number_task_status', ['task_id', 'last_status'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_task_number_import_id'), ['import_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('task_number', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_number_import_id'))
        batch_op.drop_index('ix_task_number_task_status')
        batch_op.drop_index('ix_task_number_task_position')
