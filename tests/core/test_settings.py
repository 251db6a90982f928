import re

import pytest

from core.settings import ROOT, SPECS, SettingsError, load_settings, parse_fs_nodes


def load(tmp_path, **env):
    return load_settings(environ={"DATA_DIR": str(tmp_path), **env},
                         env_file=tmp_path / "none.env")


def test_embedded_defaults(tmp_path):
    s = load(tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path / 'callcentre.db'}"
    assert s.redis_embedded and s.redis_url == "redis://127.0.0.1:6390/0"
    assert (s.web_host, s.web_port) == ("127.0.0.1", 5000)
    assert s.simswitch and s.fs_nodes[0].host == "127.0.0.1"
    assert s.recordings_dir == tmp_path / "recordings" and s.log_dir.is_dir()


def test_secret_key_is_generated_once_and_kept(tmp_path):
    first = load(tmp_path).secret_key
    assert len(first) >= 40
    assert load(tmp_path).secret_key == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert load(tmp_path, SECRET_KEY="given").secret_key == "given"


@pytest.mark.parametrize("name,value", [
    ("WEB_PORT", "abc"), ("WEB_PORT", "70000"), ("EMBEDDED_REDIS_PORT", "-1"),
    ("DATABASE_URL", "mysql://x"), ("REDIS_URL", "http://x"), ("WORKERS", "0"),
    ("SIMSWITCH", "maybe"), ("TIMEZONE", "Mars/Base"), ("LOG_LEVEL", "LOUD"),
    ("FS_NODES", "a=host:notaport:pw"), ("FS_NODES", "justahost"),
    ("SIMSWITCH_SCENARIO", "/no/such/file.yaml"),
])
def test_bad_value_names_the_variable(tmp_path, name, value):
    with pytest.raises(SettingsError, match=f"^{name}:"):
        load(tmp_path, **{name: value})


def test_fs_nodes_parse_passwords_with_colons():
    nodes = parse_fs_nodes("a=10.0.0.1:8021:pa:ss, b=10.0.0.2:8022:x")
    assert [(n.name, n.host, n.port, n.password) for n in nodes] == [
        ("a", "10.0.0.1", 8021, "pa:ss"), ("b", "10.0.0.2", 8022, "x")]
    with pytest.raises(SettingsError, match="unique"):
        parse_fs_nodes("a=h:1:p,a=h:2:p")


def test_configured_nodes_turn_simswitch_off(tmp_path):
    s = load(tmp_path, FS_NODES="fs1=10.1.1.1:8021:secret")
    assert not s.simswitch and s.fs_nodes[0].name == "fs1"
    assert load(tmp_path, FS_NODES="fs1=10.1.1.1:8021:x", SIMSWITCH="yes").simswitch


def test_dotenv_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("WEB_PORT=6001\nWORKERS=3\n")
    s = load_settings(environ={"DATA_DIR": str(tmp_path), "WORKERS": "2"}, env_file=env_file)
    assert (s.web_port, s.workers) == (6001, 2)


def test_plain_postgres_url_gets_the_psycopg_driver(tmp_path):
    s = load(tmp_path, DATABASE_URL="postgresql://u@h/db")
    assert s.database_url == "postgresql+psycopg://u@h/db"


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, re.M))
    assert documented == {spec.name for spec in SPECS}
