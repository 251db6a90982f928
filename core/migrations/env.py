"""Alembic environment: the URL comes from core.migrate (i.e. from settings), never a file."""

from alembic import context

from core.db import make_engine
from core.migrate import for_dialect
from core.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        # Batch mode rewrites ALTERs as table copies on SQLite; PostgreSQL alters in place.
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=True, compare_type=True,
                          include_object=for_dialect(connection.dialect.name))
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
