"""Rows to JSON: the API's only view of the models."""

from __future__ import annotations

from datetime import date, datetime

from core.models import Call, Notification, Task


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value else None


TASK_FIELDS = (
    "id", "name", "tags", "direction", "state", "script_mode", "script_id", "timed_scripts",
    "fallback_script_id", "qc_rule", "line_id", "max_concurrency", "call_interval_s",
    "background_sound", "weekly", "call_time_template_id", "skip_holidays",
    "forbidden_ranges", "lead_allocation", "transfer_group_id", "pause_when_agents_busy",
    "predictive", "predictive_busy_to_ai", "end_action", "dialogue_settings", "quota",
)


def task(row: Task, counts: dict[str, int] | None = None) -> dict:
    data = {f: getattr(row, f) for f in TASK_FIELDS}
    data.update(date_start=_iso(row.date_start), date_end=_iso(row.date_end),
                created_at=_iso(row.created_at), started_at=_iso(row.started_at),
                finished_at=_iso(row.finished_at))
    if counts is not None:
        data["numbers"] = {"total": sum(counts.values()), **counts}
    return data


CALL_FIELDS = (
    "id", "uuid", "task_id", "task_number_id", "line_id", "direction", "phone", "caller_id",
    "ring_seconds", "talk_seconds", "status", "sip_code", "hangup_cause", "hangup_side",
    "grade", "tags", "score", "interactions", "unrecognised", "transfer", "sms", "push",
    "region", "carrier", "variables",
)


def call(row: Call) -> dict:
    data = {f: getattr(row, f) for f in CALL_FIELDS}
    for f in ("created_at", "originated_at", "ringing_at", "answered_at", "ended_at"):
        data[f] = _iso(getattr(row, f))
    data["has_recording"] = bool(row.recording_path)
    return data


def notification(row: Notification) -> dict:
    return {
        "id": row.id, "kind": row.kind, "title": row.title, "state": row.state,
        "progress": row.progress, "total": row.total, "done": row.done_count,
        "failed": row.failed_count, "error": row.error, "read": row.read,
        "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
    }
