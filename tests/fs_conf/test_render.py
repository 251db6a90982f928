from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from core.settings import ROOT
from fs_conf.check import check_tree
from fs_conf.gateways import Gateway
from fs_conf.render import (
    FILES,
    RenderError,
    default_console_url,
    pick_node,
    render_node,
    sofia_conf,
)
from tests.fs_conf.conftest import sample_settings


def params(root: ET.Element, path: str = ".//param") -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in root.iterfind(path)}


def parse(conf, rel) -> ET.Element:
    return ET.parse(conf / rel).getroot()


def pre_vars(conf) -> dict[str, str]:
    sets = [el.get("data") for el in parse(conf, "vars.xml").iter("X-PRE-PROCESS")]
    return dict(item.split("=", 1) for item in sets)


def test_every_file_is_written_well_formed_and_passes_the_checks(rendered):
    for rel in FILES:
        ET.parse(rendered / rel)  # raises if not well-formed
        assert (rendered / rel).stat().st_mode & 0o777 == 0o640  # holds secrets
    assert check_tree(rendered) == []


def test_frslint_lint_and_analyze_pass(rendered):
    # Rendered values (paths, URLs, secrets) can push a line past frslint's default 120.
    for command in (["lint", "--max-line-length", "200"], ["analyze"]):
        result = subprocess.run([sys.executable, "-m", "frslint", command[0],
                                 str(rendered / "freeswitch.xml"), *command[1:]],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def frslint_route(conf, number: str, context: str) -> str:
    result = subprocess.run([sys.executable, "-m", "frslint", "debug",
                             str(conf / "freeswitch.xml"), number, "-c", context],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.rsplit("-" * 60, 1)[-1]


def test_dialplan_routes_as_documented(rendered):
    """frslint's dialplan evaluator: trunks' calls without the console are refused; an
    agent's call to anything but an agent (frslint cannot run user_exists, so: anything) is
    refused too. The agent-to-agent bridge was checked on a real FreeSWITCH."""
    route = frslint_route(rendered, "13800138000", "public")
    assert "respond: 503" in route and "bridge" not in route
    route = frslint_route(rendered, "13800138000", "agents")
    assert "user_exists" in route and "respond: 403" in route and "bridge" not in route


def test_settings_reach_the_files(rendered):
    switch = params(parse(rendered, "autoload_configs/switch.conf.xml"))
    assert (switch["switchname"], switch["max-sessions"], switch["sessions-per-second"]) == (
        "fs1", "600", "12")
    assert (switch["rtp-start-port"], switch["rtp-end-port"]) == ("20000", "20999")

    esl = params(parse(rendered, "autoload_configs/event_socket.conf.xml"))
    assert (esl["listen-ip"], esl["listen-port"], esl["password"]) == (
        "10.0.0.5", "8021", 'esl-Pass<&>"1')
    assert esl["apply-inbound-acl"] == "esl"
    acl = parse(rendered, "autoload_configs/acl.conf.xml").find(".//list[@name='esl']")
    assert acl.get("default") == "deny"
    assert [n.get("cidr") for n in acl] == ["10.0.0.0/24", "192.0.2.7/32"]

    curl = params(parse(rendered, "autoload_configs/xml_curl.conf.xml"))
    assert curl["gateway-url"] == "http://127.0.0.1:5050/freeswitch/fs1/xml_curl"
    assert curl["gateway-credentials"] == "freeswitch:http-secret&<x>"
    cdr = params(parse(rendered, "autoload_configs/json_cdr.conf.xml"))
    assert cdr["url"] == "http://127.0.0.1:5050/freeswitch/fs1/cdr"
    assert (cdr["cred"], cdr["encode"], cdr["encode-values"]) == (
        "freeswitch:http-secret&<x>", "false", "false")

    v = pre_vars(rendered)
    assert v["external_rtp_ip"] == v["external_sip_ip"] == "203.0.113.10"
    assert v["wss_cert_dir"] == "/etc/freeswitch/tls"
    assert v["cc_recordings_dir"].endswith("data/recordings")


def test_modules_load_xml_curl_before_sofia(rendered):
    modules = [m.get("module") for m in parse(rendered, "autoload_configs/modules.conf.xml")
               .iter("load")]
    for needed in ("mod_event_socket", "mod_sofia", "mod_dptools", "mod_commands",
                   "mod_dialplan_xml", "mod_sndfile", "mod_native_file", "mod_tone_stream",
                   "mod_loopback", "mod_json_cdr", "mod_xml_curl", "mod_audio_fork"):
        assert needed in modules
    assert modules.index("mod_xml_curl") < modules.index("mod_sofia")
    assert len(modules) == len(set(modules))


def test_profiles(rendered):
    sofia = parse(rendered, "autoload_configs/sofia.conf.xml")
    internal = params(sofia, ".//profile[@name='internal']/settings/param")
    external = params(sofia, ".//profile[@name='external']/settings/param")
    assert internal["wss-binding"] == ":$${internal_wss_port}"
    assert internal["tls-cert-dir"] == "$${wss_cert_dir}"
    assert internal["auth-calls"] == "true" and internal["context"] == "agents"
    assert internal["inbound-codec-prefs"] == "$${agent_codecs}"
    assert pre_vars(rendered)["agent_codecs"] == "OPUS,PCMU,PCMA"
    assert pre_vars(rendered)["trunk_codecs"] == "PCMA,PCMU,G722"
    assert external["context"] == "public" and external["disable-register"] == "true"
    assert external["disable-transfer"] == internal["disable-transfer"] == "true"
    # On disk the external profile has no gateways: the console serves them.
    assert list(sofia.find(".//profile[@name='external']/gateways")) == []


def test_auto_external_ip_is_the_nodes_own(tmp_path):
    settings = sample_settings(tmp_path, FS_EXTERNAL_IP="auto", FS_WSS_CERT_DIR="")
    files = render_node(settings, pick_node(settings, "fs2"), "http://console:5000/freeswitch/fs2/")
    text = files["vars.xml"]
    assert "external_rtp_ip=$${local_ip_v4}" in text and "wss_cert_dir=$${certs_dir}" in text
    assert 'value="http://console:5000/freeswitch/fs2/cdr"' in files["autoload_configs/json_cdr.conf.xml"]


def test_sofia_conf_with_gateways_is_valid_xml():
    gw = Gateway("gw<1>", (("proxy", "sip.example.com"), ("password", 'p"&<')),
                 (("absolute_codec_string", "PCMA,PCMU", "outbound"),))
    root = ET.fromstring(sofia_conf([gw]))
    gateway = root.find(".//profile[@name='external']/gateways/gateway")
    assert gateway.get("name") == "gw<1>"
    assert params(gateway) == {"proxy": "sip.example.com", "password": 'p"&<'}
    assert gateway.find("variables/variable").attrib == {
        "name": "absolute_codec_string", "value": "PCMA,PCMU", "direction": "outbound"}


@pytest.mark.parametrize("env,node,message", [
    ({"FS_NODES": ""}, None, "not FreeSWITCH's default"),
    ({"FS_NODES": "a=127.0.0.1:8021:ClueCon"}, None, "not FreeSWITCH's default"),
    ({}, None, "several nodes"),
    ({}, "fs9", "no node 'fs9'"),
])
def test_pick_node_refuses(tmp_path, env, node, message):
    with pytest.raises(RenderError, match=message):
        pick_node(sample_settings(tmp_path, **env), node)


def test_node_host_must_be_an_address(tmp_path):
    settings = sample_settings(tmp_path, FS_NODES="a=fs.example.com:8021:pw")
    with pytest.raises(RenderError, match="must be an IP address"):
        render_node(settings, pick_node(settings, None), "http://x")


def test_default_console_url(tmp_path):
    settings = sample_settings(tmp_path, WEB_HOST="10.1.2.3")
    assert default_console_url(settings, settings.fs_nodes[0]) == \
        "http://10.1.2.3:5050/freeswitch/fs1"
    settings = sample_settings(tmp_path, WEB_HOST="::1")
    assert default_console_url(settings, settings.fs_nodes[0]) == "http://[::1]:5050/freeswitch/fs1"


def run_cli(tmp_path, *args, **env):
    environ = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
               "DATA_DIR": str(tmp_path / "data"), **env}
    return subprocess.run([sys.executable, "-m", "fs_conf", *args], capture_output=True,
                          text=True, cwd=tmp_path, env=environ, timeout=120)


def test_cli_renders_and_checks(tmp_path):
    result = run_cli(tmp_path, "render", "--dest", str(tmp_path / "etc"), "--node", "fs2",
                     FS_NODES="fs1=10.0.0.5:8021:a,fs2=127.0.0.1:8022:b")
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "etc" / "freeswitch.xml") in result.stdout
    esl = params(parse(tmp_path / "etc", "autoload_configs/event_socket.conf.xml"))
    assert (esl["listen-ip"], esl["password"]) == ("127.0.0.1", "b")
    assert run_cli(tmp_path, "check", str(tmp_path / "etc")).returncode == 0


def test_cli_says_what_is_wrong(tmp_path):
    result = run_cli(tmp_path, "render", "--dest", str(tmp_path / "etc"), FS_NODES="")
    assert result.returncode == 2 and "FS_NODES" in result.stderr
    assert not (tmp_path / "etc").exists()
    result = run_cli(tmp_path, "render", "--dest", str(tmp_path / "etc"),
                     FS_NODES="a=127.0.0.1:8021:pw", FS_RTP_END="100")
    assert result.returncode != 0 and "FS_RTP_END: must be above" in result.stderr
