"""Blacklist (黑名单, FEATURES.md P5): add, remove and move entries; ask whether a number is
on a live entry.

An entry is *live* while it has no release time (`expires_at` None) or its release time is
still in the future; an expired entry stays in the table (the console shows it as released)
until someone deletes it. Phones are stored normalised (core.phones).

Callers pass their own session and commit; nothing here commits. Every function that takes
`account_id` refuses groups of another account (BlacklistError), so views can pass ids from
a form as they are.

    from core import blacklist
    result = blacklist.add(session, account_id, group_id, ["138 1234 5678"], reason="投诉",
                           source="call")  # released after the group's release_days
    if blacklist.is_blacklisted(session, account_id, [g.id for g in task.blacklist_groups],
                                phone):
        ...  # the dialer records a Call with status CallStatus.BLACKLISTED and skips it
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session

from core import clock
from core.models import BlacklistEntry, BlacklistGroup
from core.phones import PhoneError, normalise

# Sources an entry may come from (shown in the console's list).
SOURCES = ("manual", "import", "call", "record", "script", "api")
_CHUNK = 500  # IN (...) lists stay well under SQLite's and PostgreSQL's parameter limits


class BlacklistError(Exception):
    """A group is missing or belongs to another account; the message (Chinese) says which."""


@dataclass
class AddResult:
    """What `add` did: numbers newly added, numbers already in the group whose reason and
    release time were refreshed, and (raw value, reason) pairs that are not phone numbers."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)


def live_clause(now: datetime | None = None) -> ColumnElement[bool]:
    """SQL condition "this entry is live at `now`", for callers that build their own query."""
    return or_(BlacklistEntry.expires_at.is_(None), BlacklistEntry.expires_at > (now or clock.now()))


def is_live(entry: BlacklistEntry, now: datetime | None = None) -> bool:
    return entry.expires_at is None or entry.expires_at > (now or clock.now())


def _group(session: Session, account_id: int, group_id: int) -> BlacklistGroup:
    group = session.get(BlacklistGroup, group_id)
    if group is None or group.account_id != account_id:
        raise BlacklistError("黑名单分组不存在")
    return group


def lookup_phone(raw) -> str:
    """Normalised phone, or the stripped text when it is not a valid number (for lookups:
    an invalid number simply matches nothing)."""
    try:
        return normalise(raw)
    except PhoneError:
        return str(raw).strip()


class _GroupDefault:
    def __repr__(self) -> str:
        return "GROUP_DEFAULT"


# `add(expires_at=GROUP_DEFAULT)`: release after the group's release_days (never when unset).
GROUP_DEFAULT = _GroupDefault()


def add(session: Session, account_id: int, group_id: int, phones: Iterable[str], *,
        reason: str = "", source: str = "manual",
        expires_at: datetime | None | _GroupDefault = GROUP_DEFAULT) -> AddResult:
    """Put `phones` into group `group_id` of `account_id`.

    `expires_at` is the release time: a datetime, None for never, or GROUP_DEFAULT (the
    default) for now + the group's release_days. A number already in the group gets the new
    reason, source and release time (so adding again re-arms an expired entry). Invalid
    numbers are reported, not raised. Raises BlacklistError when the group is not the
    account's.
    """
    group = _group(session, account_id, group_id)
    if isinstance(expires_at, _GroupDefault):
        expires_at = clock.now() + timedelta(days=group.release_days) \
            if group.release_days else None
    result = AddResult()
    wanted: dict[str, None] = {}
    for raw in phones:
        try:
            wanted[normalise(raw)] = None
        except PhoneError as exc:
            result.invalid.append((str(raw), str(exc)))
    numbers = list(wanted)
    existing: dict[str, BlacklistEntry] = {}
    for i in range(0, len(numbers), _CHUNK):
        chunk = numbers[i:i + _CHUNK]
        existing.update((e.phone, e) for e in session.scalars(
            select(BlacklistEntry).where(BlacklistEntry.group_id == group_id,
                                         BlacklistEntry.phone.in_(chunk))))
    for phone in numbers:
        entry = existing.get(phone)
        if entry is None:
            session.add(BlacklistEntry(account_id=account_id, group_id=group_id, phone=phone,
                                       reason=reason[:255], source=source,
                                       expires_at=expires_at))
            result.added.append(phone)
        else:
            entry.reason, entry.source, entry.expires_at = reason[:255], source, expires_at
            result.updated.append(phone)
    session.flush()
    return result


def remove(session: Session, account_id: int, entry_ids: Iterable[int]) -> int:
    """Delete the account's entries among `entry_ids`; returns how many went."""
    ids = list(entry_ids)
    gone = 0
    for i in range(0, len(ids), _CHUNK):
        gone += session.execute(delete(BlacklistEntry).where(
            BlacklistEntry.account_id == account_id,
            BlacklistEntry.id.in_(ids[i:i + _CHUNK]))).rowcount
    return gone


def move(session: Session, account_id: int, entry_ids: Iterable[int],
         target_group_id: int) -> int:
    """Move the account's entries among `entry_ids` into `target_group_id`.

    Where the target already holds the number, the moved entry replaces it (its reason and
    release time win) so each group keeps one entry per number. Returns how many moved.
    Raises BlacklistError when the target group is not the account's.
    """
    _group(session, account_id, target_group_id)
    ids = list(entry_ids)
    moved = 0
    for i in range(0, len(ids), _CHUNK):
        entries = list(session.scalars(select(BlacklistEntry).where(
            BlacklistEntry.account_id == account_id, BlacklistEntry.id.in_(ids[i:i + _CHUNK]),
            BlacklistEntry.group_id != target_group_id)))
        if not entries:
            continue
        session.execute(delete(BlacklistEntry).where(
            BlacklistEntry.group_id == target_group_id,
            BlacklistEntry.phone.in_([e.phone for e in entries])))
        for entry in entries:
            entry.group_id = target_group_id
        moved += len(entries)
    session.flush()
    return moved


def is_blacklisted(session: Session, account_id: int, group_ids: Iterable[int], phone: str,
                   now: datetime | None = None) -> bool:
    """Whether `phone` is on a live entry of one of `group_ids` (of `account_id`).

    An empty `group_ids` means no blacklist applies: False. `phone` is normalised first.
    """
    groups = list(group_ids)
    if not groups:
        return False
    return session.scalar(
        select(BlacklistEntry.id).where(
            BlacklistEntry.account_id == account_id, BlacklistEntry.group_id.in_(groups),
            BlacklistEntry.phone == lookup_phone(phone), live_clause(now)).limit(1)) is not None


def live_numbers(session: Session, group_ids: Iterable[int], phones: Iterable[str],
                 now: datetime | None = None) -> set[str]:
    """The subset of `phones` (normalised) on a live entry of one of `group_ids` — one query
    per 500 numbers, for the dialer's batch of next numbers. Group ids come from a task, so
    they are already the account's."""
    groups = list(group_ids)
    numbers = list(dict.fromkeys(lookup_phone(p) for p in phones))
    if not groups or not numbers:
        return set()
    found: set[str] = set()
    for i in range(0, len(numbers), _CHUNK):
        found.update(session.scalars(select(BlacklistEntry.phone).where(
            BlacklistEntry.group_id.in_(groups),
            BlacklistEntry.phone.in_(numbers[i:i + _CHUNK]), live_clause(now))))
    return found
