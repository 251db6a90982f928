"""Rules between lines, without I/O: which lines FreeSWITCH would confuse, and how far a
line's concurrency may be lowered under its running tasks (T2)."""

from __future__ import annotations

from collections.abc import Iterable

from core.models import Line
from core.task_rules import CapacityCheck, check_line_capacity


def share_a_node(a: str | None, b: str | None) -> bool:
    """Whether two lines' gateways land on one node (None: every node)."""
    return a is None or b is None or a == b


def did_key(did: str | None) -> str | None:
    """The inbound dialplan matches a DID with or without its leading '+'."""
    return did.lstrip("+") if did else None


def gateway_clash(line: Line, others: Iterable[Line]) -> Line | None:
    """Another line whose gateway name `line`'s would collide with on a node. Gateway names
    are global in FreeSWITCH (node_gateways keeps only the oldest); compared ignoring case so
    that no FreeSWITCH build can mistake one for the other. Disabled lines count too, or
    enabling one later would silently push the other out."""
    name = line.gateway.lower()
    return next((o for o in others if o.id != line.id and o.gateway.lower() == name
                 and share_a_node(o.fs_node, line.fs_node)), None)


def did_clash(line: Line, others: Iterable[Line]) -> Line | None:
    """Another line claiming the same inbound number on a node: the inbound dialplan would
    refuse calls to it (480)."""
    key = did_key(line.inbound_did)
    if key is None:
        return None
    return next((o for o in others if o.id != line.id and did_key(o.inbound_did) == key
                 and share_a_node(o.fs_node, line.fs_node)), None)


def lowering_check(new_max: int, running: Iterable[int]) -> CapacityCheck:
    """T2 seen from the line: its running tasks' concurrency must still fit under `new_max`.
    Refusing (rather than letting the controller share a smaller line) keeps the promise
    each task was started with; the operator pauses or shrinks tasks first."""
    return check_line_capacity(new_max, running, 0)
