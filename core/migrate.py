"""Database migrations (Alembic), run by `manage db upgrade` and the launcher."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

SCRIPTS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    # ConfigParser interpolates '%': URL-encoded passwords must survive it.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def for_dialect(dialect: str):
    """Alembic's `include_object` for one database: a model object whose DDL is for another
    database only (`.ddl_if(dialect=…)`, e.g. PostgreSQL's trigram index) is not expected
    in this one."""
    def include(obj, name, type_, reflected, compare_to) -> bool:
        only = getattr(obj, "_ddl_if", None)
        return reflected or only is None or only.dialect in (None, dialect)
    return include


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def revision(url: str, message: str) -> None:
    """Autogenerate a new migration from the models (developers only)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
