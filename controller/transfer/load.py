"""Read a transfer group and its members from the database into a TransferGroupSpec."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.enums import TransferStrategy
from core.models import Line, TransferGroup, TransferGroupMember, User
from core.transfer import Member, TransferGroupSpec


def remote_dial(line: Line | None, number: str | None) -> str | None:
    """The endpoint of the remote strategy: the number through the line's gateway."""
    if not number:
        return None
    if line is None:
        return f"sofia/external/{number}"
    return f"sofia/gateway/{line.gateway}/{number}"


def load_group_spec(session: Session, group_id: int) -> TransferGroupSpec | None:
    """The group with its active members (ordered), or None when it does not exist."""
    group = session.get(TransferGroup, group_id)
    if group is None:
        return None
    rows = session.execute(
        select(TransferGroupMember, User).join(User, User.id == TransferGroupMember.user_id)
        .where(TransferGroupMember.group_id == group_id, User.active.is_(True))
        .order_by(TransferGroupMember.position, TransferGroupMember.id)).all()
    members = tuple(Member(u.id, u.sip_extension, m.position, u.display_name or u.username)
                    for m, u in rows)
    line = session.get(Line, group.remote_line_id) if group.remote_line_id else None
    return TransferGroupSpec(
        id=group.id, name=group.name, strategy=TransferStrategy(group.strategy),
        ring_timeout_s=group.ring_timeout_s or 20, members=members,
        remote_dial=remote_dial(line, group.remote_number), music=group.music,
        account_id=group.account_id)
