"""Sofia gateways from the console's lines (线路).

A line becomes one gateway of the external profile. Lines are edited by operators, so every
value is checked here: a line that cannot make a valid gateway is left out with a logged
reason instead of breaking the whole profile.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.models import Line

log = logging.getLogger(__name__)

# Used in dial strings (sofia/gateway/NAME/NUMBER), so no '/', '@' or spaces.
GATEWAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# host, host:port, IPv4/IPv6 literal, optionally with ;transport=…
SIP_PROXY = re.compile(r"^[A-Za-z0-9.\-\[\]:]+(;transport=(udp|tcp|tls))?$")
CODEC = re.compile(r"^[A-Za-z0-9]+(@[0-9]+[hki])*$")

# Gateway parameters a line's `params` may set or override (mod_sofia 1.10's list); anything
# else is a typo that FreeSWITCH would silently ignore.
GATEWAY_PARAMS = frozenset({
    "register", "scheme", "realm", "username", "auth-username", "password",
    "extension", "extension-in-contact", "caller-id-in-from", "contact-in-ping", "ping",
    "ping-max", "ping-min", "ping-user-agent", "ping-monitoring", "proxy", "context",
    "expire-seconds", "908-retry-seconds", "retry-seconds", "timeout-seconds", "from-user",
    "from-domain", "contact-host", "register-proxy", "outbound-proxy", "distinct-to",
    "destination-prefix", "rfc-5626", "reg-id", "contact-params", "register-transport",
    "gw-auth-acl",
})


class GatewayError(ValueError):
    """A line cannot become a gateway; the message says why."""


@dataclass(frozen=True)
class Gateway:
    name: str
    params: tuple[tuple[str, str], ...]
    variables: tuple[tuple[str, str, str], ...]  # (name, value, inbound|outbound)


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str | int):
        raise GatewayError(f"expected text or a number, got {value!r}")
    return str(value)


def gateway_from_line(line: Line) -> Gateway:
    """The gateway for `line`; raises GatewayError naming what is wrong with it."""
    if not GATEWAY_NAME.match(line.gateway or ""):
        raise GatewayError(f"gateway name {line.gateway!r}: use letters, digits, '_', '.', '-'")
    proxy = (line.sip_proxy or "").strip()
    if not SIP_PROXY.match(proxy):
        raise GatewayError(f"SIP proxy {line.sip_proxy!r}: expected host[:port]")
    params: dict[str, str] = {"proxy": proxy, "register": _text(bool(line.register)),
                              # Carriers read the caller ID from the From header.
                              "caller-id-in-from": "true"}
    if line.register:
        # Calls arriving on the registration carry the DID in To; make it the destination.
        params["extension"] = "auto_to_user"
    if line.sip_username:
        params["username"] = line.sip_username
    if line.sip_password:
        params["password"] = line.sip_password
    for name, value in (line.params or {}).items():
        if name not in GATEWAY_PARAMS:
            raise GatewayError(f"unknown gateway parameter {name!r} in params")
        params[name] = _text(value)
    if params["register"] == "true" and not (params.get("username") and params.get("password")):
        # FreeSWITCH would drop the gateway with only a log line.
        raise GatewayError("a registering line needs a SIP username and password")

    codecs = [c.strip() for c in (line.codecs or "").split(",") if c.strip()]
    bad = [c for c in codecs if not CODEC.match(c)]
    if bad:
        raise GatewayError(f"codecs {bad}: expected names like PCMA, G722, OPUS@48000h")
    variables = []
    if codecs:
        # Applied to every call out through this gateway; overrides the profile's list.
        variables.append(("absolute_codec_string", ",".join(codecs), "outbound"))
    return Gateway(line.gateway, tuple(params.items()), tuple(variables))


def node_lines(session: Session, node: str) -> list[Line]:
    """Enabled lines that belong on `node` (theirs, or any node's), oldest first."""
    stmt = (select(Line)
            .where(Line.enabled.is_(True), or_(Line.fs_node.is_(None), Line.fs_node == node))
            .order_by(Line.id))
    return list(session.scalars(stmt))


def node_gateways(session: Session, node: str) -> list[Gateway]:
    """The gateways of `node`. A line with a bad value, or whose gateway name an older line
    already uses (names are global in FreeSWITCH), is skipped with a logged error."""
    gateways: dict[str, Gateway] = {}
    for line in node_lines(session, node):
        try:
            gateway = gateway_from_line(line)
        except GatewayError as exc:
            log.error("line %s (%s) left out of node %s: %s", line.id, line.name, node, exc)
            continue
        if gateway.name in gateways:
            log.error("line %s (%s) left out of node %s: gateway name %r is already used",
                      line.id, line.name, node, gateway.name)
            continue
        gateways[gateway.name] = gateway
    return list(gateways.values())
