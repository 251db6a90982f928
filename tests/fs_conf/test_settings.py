"""The FS_* settings fs_conf and the console's FreeSWITCH endpoints use (core.settings)."""

from __future__ import annotations

import ipaddress

import pytest

from core.settings import SettingsError, load_settings


def load(tmp_path, **env):
    return load_settings(environ={"DATA_DIR": str(tmp_path), **env},
                         env_file=tmp_path / "none.env").freeswitch


def test_defaults_are_loopback_and_a_kept_secret(tmp_path):
    fs = load(tmp_path)
    assert fs.http_allow == fs.esl_allow == (ipaddress.ip_network("127.0.0.1/32"),
                                             ipaddress.ip_network("::1/128"))
    assert (fs.external_ip, fs.rtp_start, fs.rtp_end) == ("auto", 16384, 32768)
    assert (fs.max_sessions, fs.sessions_per_second, fs.wss_cert_dir) == (1000, 30, None)
    assert len(fs.http_secret) >= 32 and load(tmp_path).http_secret == fs.http_secret
    assert (tmp_path / "fs_http_secret").stat().st_mode & 0o777 == 0o600
    assert load(tmp_path, FS_HTTP_SECRET="given").http_secret == "given"


def test_values_are_parsed(tmp_path):
    fs = load(tmp_path, FS_HTTP_ALLOW="10.0.0.7, 10.1.0.0/16", FS_EXTERNAL_IP="stun:stun.cn",
              FS_WSS_CERT_DIR="/etc/ssl/fs")
    assert [str(n) for n in fs.http_allow] == ["10.0.0.7/32", "10.1.0.0/16"]
    assert (fs.external_ip, fs.wss_cert_dir) == ("stun:stun.cn", "/etc/ssl/fs")
    assert load(tmp_path, FS_EXTERNAL_IP="2001:db8::1").external_ip == "2001:db8::1"


@pytest.mark.parametrize("name,value", [
    ("FS_HTTP_ALLOW", "localhost"), ("FS_ESL_ALLOW", "10.0.0.0/33"), ("FS_ESL_ALLOW", ","),
    ("FS_EXTERNAL_IP", "1.2.3"), ("FS_EXTERNAL_IP", "stun:"), ("FS_RTP_START", "0"),
    ("FS_RTP_END", "16000"), ("FS_MAX_SESSIONS", "0"), ("FS_SESSIONS_PER_SECOND", "fast"),
])
def test_bad_value_names_the_variable(tmp_path, name, value):
    with pytest.raises(SettingsError, match=f"^{name}:"):
        load(tmp_path, **{name: value})
