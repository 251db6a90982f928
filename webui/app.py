"""The console's application factory."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from flask import Flask, g
from flask_babel import get_locale
from flask_login import current_user

from core import redis_conn
from core.db import configure_engine, engine_options
from core.settings import Settings, get_settings
from webui import i18n
from webui.extensions import babel, csrf, db, login_manager


def create_app(settings: Settings | None = None, **overrides) -> Flask:
    """Build the console for `settings` (default: the process settings)."""
    settings = settings or get_settings()
    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings.database_url),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,
        BABEL_DEFAULT_LOCALE=i18n.DEFAULT_LOCALE,
        BABEL_TRANSLATION_DIRECTORIES=str(
            i18n.compile_catalogues(settings.data_dir / "translations")),
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.config.update(overrides)
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    app.extensions["redis"] = redis_conn.connect(settings.redis_url)

    from webui.after_call import bp as after_call_bp
    from webui.agents import bp as agents_bp
    from webui.api import bp as api_bp
    from webui.auth.views import bp as auth_bp
    from webui.blacklist import bp as blacklist_bp
    from webui.call_detail import bp as call_detail_bp
    from webui.call_detail.share import bp as share_bp  # public: no login
    from webui.console.views import bp as console_bp
    from webui.freeswitch import bp as freeswitch_bp
    from webui.lines import bp as lines_bp
    from webui.numbers import bp as numbers_bp
    from webui.records import bp as records_bp
    from webui.scripts import bp as scripts_bp
    from webui.system.views import bp as system_bp
    from webui.tasks import bp as tasks_bp
    from webui.team.views import bp as team_bp

    for bp in (auth_bp, console_bp, team_bp, system_bp, freeswitch_bp):
        app.register_blueprint(bp)
    app.register_blueprint(blacklist_bp)
    app.register_blueprint(after_call_bp)
    app.register_blueprint(scripts_bp)
    app.register_blueprint(agents_bp)
    app.register_blueprint(tasks_bp)
    app.register_blueprint(records_bp)
    app.register_blueprint(call_detail_bp)
    app.register_blueprint(lines_bp)
    app.register_blueprint(numbers_bp)
    app.register_blueprint(share_bp)
    csrf.exempt(freeswitch_bp)  # FreeSWITCH authenticates with FS_HTTP_SECRET, never cookies
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    csrf.exempt(api_bp)  # bearer tokens, never cookies: no cross-site request can carry one

    from webui import labels
    from webui.menu import menu_for

    @app.context_processor
    def inject_menu():
        return {"menu": menu_for(current_user) if current_user.is_authenticated else [],
                "locales": i18n.LOCALES, "labels": labels, "get_locale": get_locale}

    @app.template_filter("localtime")
    def localtime(value):
        """Show stored UTC times in the viewer's account time zone."""
        zone = current_user.account.timezone if current_user.is_authenticated \
            else settings.timezone
        return value.astimezone(ZoneInfo(zone))

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.teardown_appcontext
    def forget_scope(_exc):
        g.pop("account_ids", None)

    return app
