from __future__ import annotations

import pytest

from core.settings import load_settings
from fs_conf.render import default_console_url, pick_node, render_node, write_files

SAMPLE_ENV = {
    "FS_NODES": "fs1=10.0.0.5:8021:esl-Pass<&>\"1,fs2=127.0.0.1:8022:other-pass",
    "FS_HTTP_SECRET": "http-secret&<x>",
    "FS_ESL_ALLOW": "10.0.0.0/24,192.0.2.7",
    "FS_EXTERNAL_IP": "203.0.113.10",
    "FS_RTP_START": "20000", "FS_RTP_END": "20999",
    "FS_WSS_CERT_DIR": "/etc/freeswitch/tls",
    "FS_MAX_SESSIONS": "600", "FS_SESSIONS_PER_SECOND": "12",
    "WEB_HOST": "0.0.0.0", "WEB_PORT": "5050",
}


def sample_settings(tmp_path, **env):
    environ = {"DATA_DIR": str(tmp_path / "data"), **SAMPLE_ENV, **env}
    return load_settings(environ=environ, env_file=tmp_path / "none.env")


@pytest.fixture
def rendered(tmp_path):
    """fs1's configuration rendered from the sample settings into tmp_path/conf."""
    settings = sample_settings(tmp_path)
    node = pick_node(settings, "fs1")
    files = render_node(settings, node, default_console_url(settings, node))
    write_files(files, tmp_path / "conf")
    return tmp_path / "conf"
