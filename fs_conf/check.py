"""Static checks of a FreeSWITCH configuration directory (ours, as rendered).

frslint (PyPI) runs in the tests as well (style, generic analysis, dialplan evaluation), but
it knows nothing of this project's rules (no relay, a guarded Event Socket, includes by
name), so these are ours. Problems read "file: what is wrong".

1. well-formed: every file freeswitch.xml includes, transitively, parses as XML.
2. includes: every X-PRE-PROCESS include names one existing file (no wildcards, so stray
   files in the directory are never read).
3. variables: every $${name} is set in vars.xml (before use) or is one FreeSWITCH sets itself.
4. config names: autoload_configs/NAME.conf.xml holds <configuration name="NAME.conf">.
5. contexts: every SIP profile's context is defined in the dialplan.
6. no relay: no dialplan action dials a gateway or the external profile, and the context
   trunks land in (the external profile's) only uses applications that cannot place or
   transfer a call.
7. event socket: it has an inbound ACL defined in acl.conf and not FreeSWITCH's default
   password.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

# Set by the FreeSWITCH core before the configuration is read (switch_core.c).
CORE_VARIABLES = frozenset({
    "hostname", "local_ip_v4", "local_mask_v4", "local_ip_v6", "switch_serial", "base_dir",
    "recordings_dir", "sound_prefix", "sounds_dir", "conf_dir", "log_dir", "run_dir",
    "db_dir", "mod_dir", "htdocs_dir", "script_dir", "temp_dir", "grammar_dir",
    "fonts_dir", "images_dir", "certs_dir", "storage_dir", "cache_dir", "data_dir",
    "localstate_dir", "core_uuid", "zrtp_enabled", "nat_public_addr", "nat_private_addr",
    "nat_type",
})
# Applications a call from a trunk may meet: none of them places, bridges or transfers.
PUBLIC_APPS = frozenset({"set", "export", "log", "park", "respond", "hangup", "answer",
                         "pre_answer", "ring_ready"})
RELAY_TARGET = re.compile(r"sofia/(gateway|external)/|loopback/", re.I)
PRE_VAR = re.compile(r"\$\$\{([^}]+)\}")
DEFAULT_ESL_PASSWORD = "ClueCon"


class _Tree:
    """The files reachable from freeswitch.xml, parsed, in include order."""

    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, ET.Element] = {}
        self.order: list[str] = []
        self.problems: list[str] = []
        self.defined = set(CORE_VARIABLES)
        self._load("freeswitch.xml")

    def _load(self, rel: str) -> None:
        path = self.root / rel
        try:
            element = ET.parse(path).getroot()
        except FileNotFoundError:
            self.problems.append(f"{rel}: missing")
            return
        except ET.ParseError as exc:
            self.problems.append(f"{rel}: not well-formed XML ({exc})")
            return
        self.files[rel] = element
        self.order.append(rel)
        self._walk(rel, element)

    def _walk(self, rel: str, element: ET.Element) -> None:
        """Follow includes and `set`s in document order, as the pre-processor does."""
        for el in element.iter():
            if el.tag == "X-PRE-PROCESS":
                cmd, data = el.get("cmd", ""), el.get("data", "")
                if cmd == "set":
                    name, sep, _ = data.partition("=")
                    self._check_vars(rel, data)
                    if not sep:
                        self.problems.append(f"{rel}: set without '=': {data!r}")
                    self.defined.add(name.strip())
                elif cmd == "include":
                    if any(c in data for c in "*?["):
                        self.problems.append(f"{rel}: wildcard include {data!r}")
                    elif data in self.files:
                        self.problems.append(f"{rel}: {data!r} included twice")
                    else:
                        self._load(data)
                continue
            for value in [*el.attrib.values(), el.text or ""]:
                self._check_vars(rel, value)

    def _check_vars(self, rel: str, text: str) -> None:
        for name in PRE_VAR.findall(text):
            if name not in self.defined:
                self.problems.append(f"{rel}: $${{{name}}} is not set before use")

    def configurations(self) -> dict[str, tuple[str, ET.Element]]:
        found = {}
        for rel in self.order:
            for conf in self.files[rel].iter("configuration"):
                found[conf.get("name", "")] = (rel, conf)
        return found


def _config_names(tree: _Tree) -> list[str]:
    problems = []
    for name, (rel, _) in tree.configurations().items():
        if rel.startswith("autoload_configs/") and Path(rel).name != f"{name}.xml":
            problems.append(f"{rel}: holds configuration {name!r}")
    return problems


def _contexts(tree: _Tree) -> dict[str, ET.Element]:
    return {ctx.get("name", ""): ctx for rel in tree.order
            for ctx in tree.files[rel].iter("context")}


def _profile_contexts(tree: _Tree) -> dict[str, str]:
    sofia = tree.configurations().get("sofia.conf")
    if sofia is None:
        return {}
    return {profile.get("name", ""): param.get("value", "")
            for profile in sofia[1].iter("profile")
            for param in profile.iter("param") if param.get("name") == "context"}


def _context_rules(tree: _Tree) -> list[str]:
    problems = []
    contexts = _contexts(tree)
    profiles = _profile_contexts(tree)
    for profile, context in profiles.items():
        if context not in contexts:
            problems.append(f"sofia.conf: profile {profile} uses undefined context {context!r}")
    for name, ctx in contexts.items():
        for action in ctx.iter("action"):
            data = action.get("data", "")
            if RELAY_TARGET.search(data):
                problems.append(f"dialplan {name}: action {action.get('application')} "
                                f"dials out ({data!r}); only the controller originates")
    public = contexts.get(profiles.get("external", ""))
    if public is not None:
        for action in public.iter("action"):
            if action.get("application") not in PUBLIC_APPS:
                problems.append(f"dialplan {public.get('name')}: calls from trunks may not "
                                f"run {action.get('application')!r}")
    return problems


def _event_socket(tree: _Tree) -> list[str]:
    found = tree.configurations().get("event_socket.conf")
    if found is None:
        return ["event_socket.conf: missing"]
    rel, conf = found
    params = {p.get("name"): p.get("value", "") for p in conf.iter("param")}
    problems = []
    if params.get("password") == DEFAULT_ESL_PASSWORD:
        problems.append(f"{rel}: FreeSWITCH's default password")
    acl = params.get("apply-inbound-acl", "")
    acl_conf = tree.configurations().get("acl.conf")
    lists = {el.get("name") for el in acl_conf[1].iter("list")} if acl_conf else set()
    if acl not in lists:
        problems.append(f"{rel}: apply-inbound-acl {acl!r} is not a list in acl.conf")
    return problems


def check_tree(root: Path) -> list[str]:
    """All problems found in the configuration under `root` (empty when it passes)."""
    tree = _Tree(root)
    if not tree.files:
        return tree.problems
    return [*tree.problems, *_config_names(tree), *_context_rules(tree), *_event_socket(tree)]
