"""call records: a trigram index for "number contains" on PostgreSQL

A number fragment (the last four digits, say) matches few calls; without this index
PostgreSQL reads every call of the period to find them (≈440 ms over a million calls), with
it a few milliseconds (scripts/bench_records.py). pg_trgm ships with PostgreSQL and is a
trusted extension (PostgreSQL 13+): the database owner may create it. SQLite has no such
index; its list reads the period's calls newest first.

Revision ID: i7_phone_search
Revises: i7_records
Create Date: 2026-12-02 00:40:00
"""
from alembic import op

revision = 'i7_phone_search'
down_revision = 'i7_records'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index("ix_call_phone_trgm", "call", ["phone"], postgresql_using="gin",
                    postgresql_ops={"phone": "gin_trgm_ops"})


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_call_phone_trgm", table_name="call")
