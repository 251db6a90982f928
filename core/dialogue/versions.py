"""Which script version a call runs: a running task keeps the version that was current when
it started (edits made later apply to tasks started later)."""

from __future__ import annotations

import sqlalchemy as sa

from core.models import Script, ScriptVersion


def pinned_version(session, script_id: int, started_at=None) -> ScriptVersion | None:
    """The newest version of `script_id` created at or before `started_at` (a task's
    start time); the current version when `started_at` is None or predates every version."""
    q = sa.select(ScriptVersion).where(ScriptVersion.script_id == script_id)
    if started_at is not None:
        row = session.scalar(q.where(ScriptVersion.created_at <= started_at)
                             .order_by(ScriptVersion.version.desc()).limit(1))
        if row is not None:
            return row
    script = session.get(Script, script_id)
    if script is None:
        return None
    return session.scalar(q.where(ScriptVersion.version == script.current_version))


def save_version(session, script: Script, body: dict, user_id: int | None) -> ScriptVersion:
    """Add the next version of `script` with `body` and make it current (caller commits)."""
    latest = session.scalar(sa.select(sa.func.max(ScriptVersion.version))
                            .where(ScriptVersion.script_id == script.id)) or 0
    row = ScriptVersion(account_id=script.account_id, script_id=script.id, version=latest + 1,
                        body=body, created_by_id=user_id)
    session.add(row)
    script.current_version = latest + 1
    session.flush()
    return row
