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


@cli.group()
def demo():
    """The demo account: a sample campaign on simswitch (core/demo)."""


@demo.command("create")
@click.option("--numbers", type=click.IntRange(1, 5000), default=None,
              help="numbers in the demo task (default 300)")
def demo_create(numbers):
    """Create the demo account (or make its missing files again) and print its login."""
    from core import demo as demo_mod
    from core import migrate
    from core.bootstrap import ensure_admin

    settings = settings_or_exit()
    migrate.upgrade(settings.database_url)
    with _session() as session:
        ensure_admin(session, settings)  # the main account comes first, always
        try:
            login = demo_mod.create(session, settings, **(
                {"count": numbers} if numbers else {}))
        except (demo_mod.DemoError, demo_mod.DemoAudioError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(("created" if login.created else "exists") + f": demo account {login.account_id}")
    click.echo(f"  user {login.username} / agent {login.agent_username}, "
               f"password {login.password}")
    click.echo(f"  simswitch scenario: {demo_mod.scenario_path(settings)}")
    if login.created:
        click.echo("  restart simswitch (or scripts/run) so that it loads the demo scenario")


@demo.command("remove")
@click.option("--yes", is_flag=True, help="do not ask")
@click.option("--wait", "wait_s", type=float, default=120.0, show_default=True,
              help="seconds to let live demo calls end")
def demo_remove(yes, wait_s):
    """Delete the demo account, all its data and its files (nothing else)."""
    from core import demo as demo_mod
    from core.redis_conn import connect

    settings = settings_or_exit()
    with _session() as session:
        if demo_mod.find(session) is None:
            click.echo("no demo account")
            return
        if not yes:
            click.confirm("Delete the demo account and everything in it?", abort=True)
        removed = demo_mod.remove(
            session, settings, conn=connect(settings.redis_url), wait_s=wait_s,
            on_wait=lambda n: click.echo(f"waiting for {n} live demo call(s) to end …"))
    click.echo(f"demo removed: {removed.calls} calls, {removed.files} files")


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
        from core.demo import scenario_path

        scenario = settings.simswitch_scenario  # else the demo's, while there is a demo
        if scenario is None and scenario_path(settings).is_file():
            scenario = scenario_path(settings)
        if scenario:
            argv += ["--scenario", str(scenario)]
        os.execv(sys.executable, argv)


if __name__ == "__main__":
    cli()
