"""The project's command line: `python -m scripts.manage --help`."""

from __future__ import annotations

import logging
import os
import sys

import click

from core.settings import settings_or_exit


def _session():
    from core.db import session_factory

    return session_factory(settings_or_exit().database_url)()


@click.group()
def cli():
    """AI outbound call centre: database, users, tokens and components."""


@cli.group()
def db():
    """Database migrations."""


@db.command()
@click.option("--revision", default="head", show_default=True)
def upgrade(revision):
    """Create or upgrade the database schema."""
    from core import migrate

    migrate.upgrade(settings_or_exit().database_url, revision)
    click.echo("database is at " + revision)


@db.command()
@click.argument("revision")
def downgrade(revision):
    """Downgrade the schema to REVISION (`base` empties the database)."""
    from core import migrate

    migrate.downgrade(settings_or_exit().database_url, revision)


@cli.group()
def user():
    """Users."""


@user.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "staff", "agent"]), default="staff",
              show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--account-id", type=int, help="default: the first main account")
@click.option("--name", "display_name", default="")
def create_user(username, role, password, account_id, display_name):
    """Create a user."""
    from core.bootstrap import UserExists
    from core.bootstrap import create_user as make
    from core.enums import Role

    if len(password) < 8:
        raise click.UsageError("the password needs at least 8 characters")
    with _session() as session:
        try:
            made = make(session, username, password, Role(role), account_id, display_name)
        except (UserExists, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"created {role} {made.username} (id {made.id}) in account {made.account_id}")


@cli.group()
def token():
    """API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="cli", show_default=True)
def create_token(username, name):
    """Issue an API token for USERNAME and print it (it is not stored in clear)."""
    from core.bootstrap import create_token as issue

    with _session() as session:
        try:
            click.echo(issue(session, username, name))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None


@cli.command()
def bootstrap():
    """Upgrade the database and create the bootstrap administrator if missing."""
    from core import migrate
    from core.bootstrap import ensure_admin

    settings = settings_or_exit()
    migrate.upgrade(settings.database_url)
    with _session() as session:
        login = ensure_admin(session, settings)
    click.echo(f"administrator: {login.username}" + (" (created)" if login.created else ""))


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                "help_option_names": []})
@click.pass_context
def fs(ctx):
    """FreeSWITCH configuration: `fs render --dest DIR [--node NAME]`, `fs check DIR`."""
    from fs_conf.__main__ import main as fs_conf_main

    sys.exit(fs_conf_main(ctx.args))


COMPONENTS = ("web", "controller", "worker", "relay", "redis", "simswitch")


@cli.command()
@click.argument("component", type=click.Choice(COMPONENTS + ("all",)))
@click.option("--burst", is_flag=True, help="worker: stop when the queues are empty")
def run(component, burst):
    """Run one component in the foreground, or `all` of them under the launcher."""
    settings = settings_or_exit()
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if component == "all":
        from scripts.launch import main

        sys.exit(main(settings))
    if component == "web":
        from gevent import monkey

        monkey.patch_all()
        from webui.server import serve

        serve(settings)
    elif component == "controller":
        from gevent import monkey

        monkey.patch_all()
        from controller.service import run as run_controller

        run_controller(settings)
    elif component == "worker":
        from workers.queues import run_worker

        sys.exit(0 if run_worker(settings.redis_url, burst=burst) else 1)
    elif component == "relay":
        from workers.relay import run as run_relay

        run_relay(settings.database_url, settings.redis_url)
    elif component == "redis":
        from core.embedded_redis import command

        argv = command(settings.embedded_redis_port, settings.data_dir)
        os.execv(argv[0], argv)
    elif component == "simswitch":
        argv = [sys.executable, "-m", "simswitch", "--esl-host", settings.fs_nodes[0].host,
                "--esl-port", str(settings.fs_nodes[0].port),
                "--password", settings.fs_nodes[0].password,
                "--recordings-dir", str(settings.recordings_dir)]
        if settings.simswitch_scenario:
            argv += ["--scenario", str(settings.simswitch_scenario)]
        os.execv(sys.executable, argv)


if __name__ == "__main__":
    cli()
