"""Render the configuration of one FreeSWITCH node from the settings.

`render_node` returns {relative path: text} for every file; `sofia_conf` renders the SIP
configuration alone, which the console also serves (with gateways) through mod_xml_curl.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from core.settings import FsNode, Settings
from fs_conf.gateways import Gateway

TEMPLATES = Path(__file__).resolve().parent / "templates"
BANNER = "Rendered by `python -m fs_conf render`: edit the settings or fs_conf/templates/."

# Loaded by mod_* through switch_xml_open_cfg; listed explicitly in freeswitch.xml.
AUTOLOAD_CONFIGS = (
    "modules.conf.xml", "switch.conf.xml", "console.conf.xml", "logfile.conf.xml",
    "acl.conf.xml", "xml_curl.conf.xml", "json_cdr.conf.xml", "event_socket.conf.xml",
    "opus.conf.xml", "sofia.conf.xml",
)
FILES = ("freeswitch.xml", "vars.xml", *(f"autoload_configs/{n}" for n in AUTOLOAD_CONFIGS),
         "dialplan/public.xml", "dialplan/agents.xml", "directory/default.xml")

DEFAULT_ESL_PASSWORD = "ClueCon"

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


class RenderError(ValueError):
    """The settings cannot make a usable configuration; the message says which and why."""


def pick_node(settings: Settings, name: str | None) -> FsNode:
    """The FS_NODES entry called `name` (or the only one)."""
    nodes = {n.name: n for n in settings.fs_nodes}
    if name is None:
        if len(nodes) > 1:
            raise RenderError(f"several nodes in FS_NODES ({', '.join(nodes)}): pass --node")
        node = settings.fs_nodes[0]
    elif name not in nodes:
        raise RenderError(f"no node {name!r} in FS_NODES (have: {', '.join(nodes)})")
    else:
        node = nodes[name]
    if node.password == DEFAULT_ESL_PASSWORD:
        # Every scanner tries it; simswitch's built-in node (empty FS_NODES) uses it too.
        raise RenderError(f"node {node.name}: give it an Event Socket password of its own in "
                          "FS_NODES (name=host:port:password), not FreeSWITCH's default")
    return node


def default_console_url(settings: Settings, node: FsNode) -> str:
    """Where the node reaches the console: WEB_HOST:WEB_PORT, with a wildcard bind address
    replaced by loopback (FreeSWITCH on the same machine)."""
    host = settings.web_host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_unspecified:
        host = "127.0.0.1"
    elif address is not None and address.version == 6:
        host = f"[{host}]"
    return f"http://{host}:{settings.web_port}/freeswitch/{node.name}"


def _check_node(node: FsNode) -> None:
    try:
        ipaddress.ip_address(node.host)
    except ValueError:
        # event_socket's listen-ip takes an address, not a name.
        raise RenderError(f"node {node.name}: host must be an IP address to listen on, "
                          f"got {node.host!r}") from None


def sofia_conf(gateways: Iterable[Gateway]) -> str:
    """sofia.conf.xml: both profiles, with `gateways` in the external one."""
    return _env.get_template("autoload_configs/sofia.conf.xml").render(
        banner=BANNER, gateways=list(gateways))


def render_node(settings: Settings, node: FsNode, console_url: str) -> dict[str, str]:
    """Every file of `node`'s configuration, keyed by path relative to the conf directory.
    The on-disk sofia.conf has no gateways: the console serves them."""
    _check_node(node)
    fs = settings.freeswitch
    context = {
        "banner": BANNER, "node": node, "fs": fs, "console_url": console_url.rstrip("/"),
        "autoload_configs": AUTOLOAD_CONFIGS, "gateways": [],
        "external_ip": "$${local_ip_v4}" if fs.external_ip == "auto" else fs.external_ip,
        "wss_cert_dir": fs.wss_cert_dir or "$${certs_dir}",
        "recordings_dir": str(settings.recordings_dir),
    }
    return {path: _env.get_template(path).render(**context) for path in FILES}


def write_files(files: dict[str, str], dest: Path) -> list[Path]:
    """Write `files` under `dest`. They hold the Event Socket password and the console
    secret, so they are readable by owner and group only (FreeSWITCH runs in that group)."""
    written = []
    for rel, text in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(path, 0o640)  # O_CREAT's mode does not apply to an existing file
        written.append(path)
    return written

