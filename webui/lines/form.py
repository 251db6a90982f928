"""The line form: what the operator typed → column values and one message per bad field,
and a line's columns → what the form shows. The gateway itself (name, proxy, codecs,
parameter names, registration) is checked by fs_conf.gateways.gateway_from_line, the one
place that knows what FreeSWITCH accepts."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from flask_babel import gettext as _

from core.enums import Direction
from core.models import Line

PHONE_LIKE = re.compile(r"\+?\d{3,20}")
_TYPED_SEPARATORS = re.compile(r"[\s\-()]")  # what people type inside a number
_LIST_SEPARATORS = re.compile(r"[\r\n,，;；]+")  # spaces may be inside a number
MAX_CONCURRENCY = 10000
MAX_PASSWORD = 120  # the column's size
# Gateway parameters that have their own field: in `params` they would silently override
# it, and a password there would be shown back in the form.
OWN_FIELDS = frozenset({"proxy", "register", "username", "password"})


class FormError(ValueError):
    """One field's value is not acceptable; the message says why."""


def _limited(limit: int, convert=str):
    """`convert`, refusing text longer than the column (`limit`) holds."""
    def check(text: str):
        if len(text) > limit:
            raise FormError(_("At most %(n)d characters.", n=limit))
        return convert(text)
    return check


def _name(text: str) -> str:
    if not text:
        raise FormError(_("A line name is required."))
    return text


def _direction(text: str) -> Direction:
    if text not in set(Direction):
        raise FormError(_("Choose outbound or inbound."))
    return Direction(text)


def _number(raw: str) -> str:
    number = _TYPED_SEPARATORS.sub("", raw)
    if not PHONE_LIKE.fullmatch(number):
        raise FormError(_("%(number)s is not a phone number (digits, optionally a leading +).",
                          number=raw.strip()))
    return number


def _caller_ids(text: str) -> list[str]:
    numbers = [_number(n) for n in _LIST_SEPARATORS.split(text) if n.strip()]
    return list(dict.fromkeys(numbers))


def _codecs(text: str) -> str:
    return ",".join(c.strip() for c in text.split(",") if c.strip())


def _concurrency(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if not 1 <= value <= MAX_CONCURRENCY:
        raise FormError(_("Max concurrency is a whole number from 1 to %(n)d.",
                          n=MAX_CONCURRENCY))
    return value


def _params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        name, sep, value = (part.strip() for part in raw.partition("="))
        if not (sep and name and value):
            raise FormError(_("Parameter line %(n)d: write name=value.", n=number))
        if name in OWN_FIELDS:
            raise FormError(_("Set %(param)s with its own field, not as a parameter.",
                              param=name))
        if name in params:
            raise FormError(_("Parameter %(param)s is given twice.", param=name))
        params[name] = value
    return params


# Field → converter of its stripped text (raises FormError); limits are the column sizes
# (core/models/telephony.py). Gateway name, proxy, codec and parameter names are left to
# gateway_from_line.
CONVERTERS = {
    "name": _limited(120, _name),
    "direction": _direction,
    "gateway": str,
    "fs_node": lambda text: text or None,
    "sip_proxy": _limited(255),
    "sip_username": _limited(120, lambda text: text or None),
    "caller_ids": _caller_ids,
    "codecs": _limited(64, _codecs),
    "max_concurrency": _concurrency,
    "inbound_did": lambda text: _number(text) if text else None,
    "params": _params,
}


def parse_form(form: Mapping[str, str], nodes: Collection[str]) -> tuple[dict, dict[str, str]]:
    """(column values, {field: message}) from the submitted form. `nodes` are the node names
    the line may be pinned to. `sip_password` is among the values only when it changes: a new
    one typed, or None when "remove" is ticked; left empty, the stored one stays."""
    values: dict = {}
    errors: dict[str, str] = {}
    for name, convert in CONVERTERS.items():
        try:
            values[name] = convert(form.get(name, "").strip())
        except FormError as exc:
            errors[name] = str(exc)
    values["register"] = form.get("register") == "1"
    if form.get("clear_password") == "1":
        values["sip_password"] = None
    elif password := form.get("sip_password"):  # as typed: spaces may be part of it
        if len(password) > MAX_PASSWORD:
            errors["sip_password"] = _("At most %(n)d characters.", n=MAX_PASSWORD)
        values["sip_password"] = password
    if values.get("fs_node") and values["fs_node"] not in nodes:
        errors["fs_node"] = _("Choose a node of FS_NODES, or any node.")
    if values.get("direction") == Direction.INBOUND and "inbound_did" in values \
            and not values["inbound_did"]:
        errors["inbound_did"] = _("An inbound line needs the number customers call (DID).")
    return values, errors


def _shown(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def form_values(line: Line) -> dict[str, str]:
    """What the form shows for a saved line. Never the password: the form only says whether
    one is stored."""
    return {
        "name": line.name, "direction": line.direction, "gateway": line.gateway,
        "fs_node": line.fs_node or "", "sip_proxy": line.sip_proxy or "",
        "register": "1" if line.register else "", "sip_username": line.sip_username or "",
        "caller_ids": "\n".join(line.caller_ids or ()), "codecs": line.codecs or "",
        "max_concurrency": str(line.max_concurrency), "inbound_did": line.inbound_did or "",
        "params": "\n".join(f"{k}={_shown(v)}" for k, v in (line.params or {}).items()),
    }
