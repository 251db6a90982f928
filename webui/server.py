"""Serve the console with gevent's WSGI server (the same event loop as the controller)."""

from __future__ import annotations

import logging

from core.settings import Settings

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    from gevent.pywsgi import WSGIServer

    from webui.app import create_app

    app = create_app(settings)
    server = WSGIServer((settings.web_host, settings.web_port), app, log=None,
                        error_log=log)
    log.info("console listening on http://%s:%d", settings.web_host, settings.web_port)
    server.serve_forever()
