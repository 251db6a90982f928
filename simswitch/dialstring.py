"""Parsing of originate arguments and dial strings (pure).

``originate <url> <exten>|&<app>(<args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>]
[<timeout_sec>]`` with ``{a=1,b=2}`` global and ``[x=1]`` per-leg variables.
"""

import re
from dataclasses import dataclass, field

_APP = re.compile(r"^&([\w-]+)(?:\((.*)\))?$", re.S)


class DialStringError(ValueError):
    """The originate arguments cannot be parsed (FreeSWITCH answers -USAGE)."""


@dataclass
class Target:
    """Where a leg goes: endpoint kind plus its address parts."""

    endpoint: str  # sofia | user | loopback | error
    number: str = ""
    gateway: str = ""
    profile: str = ""
    context: str = "default"


@dataclass
class Originate:
    url: str
    target: Target
    variables: dict = field(default_factory=dict)
    app: str | None = None
    app_arg: str = ""
    exten: str | None = None
    dialplan: str = "XML"
    context: str = "default"
    cid_name: str | None = None
    cid_number: str | None = None
    timeout: float | None = None


def _split_vars(text: str) -> dict:
    """``a=1,b=2`` → dict; ``^^:`` changes the separator like FreeSWITCH does."""
    sep = ","
    if text.startswith("^^"):
        sep, text = text[2], text[3:]
    out = {}
    for item in text.split(sep):
        if "=" in item:
            key, _, value = item.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[key.strip()] = value
    return out


def split_args(text: str) -> list:
    """Split at spaces outside ``{}``, ``[]``, ``()`` and quotes."""
    args, cur, depth, quote = [], [], 0, None
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"" and depth == 0 and not cur:
            quote = ch
            cur.append(ch)
            continue
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth = max(0, depth - 1)
        if ch == " " and depth == 0:
            if cur:
                args.append("".join(cur))
                cur = []
            continue
        cur.append(ch)
    if cur:
        args.append("".join(cur))
    return [a[1:-1] if len(a) >= 2 and a[0] == a[-1] and a[0] in "'\"" else a for a in args]


def parse_url(url: str) -> tuple:
    """Strip ``{…}`` and ``[…]`` variable blocks; return (variables, bare endpoint url)."""
    variables = {}
    rest = url.strip()
    while rest[:1] in ("{", "[", "<"):
        close = {"{": "}", "[": "]", "<": ">"}[rest[0]]
        end = rest.find(close)
        if end < 0:
            raise DialStringError(f"unterminated variable block in {url!r}")
        variables.update(_split_vars(rest[1:end]))
        rest = rest[end + 1 :]
    return variables, rest


def parse_target(bare: str) -> Target:
    """Classify an endpoint url (``sofia/gateway/gw/num``, ``user/ext``, ``loopback/x``)."""
    parts = bare.split("/")
    if parts[0] == "sofia" and len(parts) >= 4 and parts[1] == "gateway":
        return Target("sofia", number="/".join(parts[3:]), gateway=parts[2])
    if parts[0] == "sofia" and len(parts) >= 3:
        return Target("sofia", number="/".join(parts[2:]).split("@")[0], profile=parts[1])
    if parts[0] == "user" and len(parts) >= 2:
        return Target("user", number=parts[1].split("@")[0])
    if parts[0] == "loopback" and len(parts) >= 2:
        return Target("loopback", number=parts[1], context=parts[2] if len(parts) > 2 else "default")
    if parts[0] == "error" and len(parts) >= 2:
        return Target("error", number=parts[1])
    return Target(parts[0])


def parse_originate(args: str) -> Originate:
    """Parse the argument string of the ``originate`` API."""
    argv = split_args(args)
    if len(argv) < 2:
        raise DialStringError("too few arguments")
    variables, bare = parse_url(argv[0])
    # A '|' or ',' separated list of legs: simswitch dials the first one only.
    bare = re.split(r"[|,]", bare)[0]
    target = parse_target(bare)
    orig = Originate(url=argv[0], target=target, variables=variables)
    m = _APP.match(argv[1])
    if m:
        orig.app, orig.app_arg = m.group(1), m.group(2) or ""
    else:
        orig.exten = argv[1]
    extra = argv[2:]
    if len(extra) > 0 and extra[0]:
        orig.dialplan = extra[0]
    if len(extra) > 1 and extra[1]:
        orig.context = extra[1]
    if len(extra) > 2:
        orig.cid_name = extra[2]
    if len(extra) > 3:
        orig.cid_number = extra[3]
    if len(extra) > 4:
        try:
            orig.timeout = float(extra[4])
        except ValueError as exc:
            raise DialStringError(f"bad timeout {extra[4]!r}") from exc
    return orig
