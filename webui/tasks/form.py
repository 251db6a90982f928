"""The task form (T1): request fields → task fields, and the account checks on what the
fields refer to. The API's JSON goes through the same `clean_for_account`."""

from __future__ import annotations

import re

from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from core.enums import Grade, ScriptMode, TaskEndAction
from core.models import (
    BlacklistGroup,
    CallTimeTemplate,
    LeadAllocationRule,
    Line,
    Script,
    ScriptPrompt,
    Task,
    TransferGroup,
)
from core.task_rules import DIALOGUE_LIMITS, WEEKDAYS, ValidationError, clean_task_fields
from webui.extensions import db

# Task field → the model its id must belong to (in the task's account).
REFERENCES = {
    "line_id": Line, "script_id": Script, "fallback_script_id": Script,
    "transfer_group_id": TransferGroup, "call_time_template_id": CallTimeTemplate,
}
CHECKBOXES = ("skip_holidays", "pause_when_agents_busy", "predictive", "predictive_busy_to_ai")
_ROW = re.compile(r"^(?P<kind>weekly|timed|forbidden)-(?:(?P<day>[a-z]{3})-)?(?P<i>\d+)-"
                  r"(?P<part>start|end|script)$")


def _rows(form: MultiDict, kind: str) -> dict:
    """Collect `weekly-mon-0-start`, `timed-2-script` … rows: {(day, index): {part: value}}."""
    rows: dict = {}
    for key, value in form.items():
        match = _ROW.match(key)
        if match and match["kind"] == kind:
            rows.setdefault((match["day"], int(match["i"])), {})[match["part"]] = value.strip()
    return dict(sorted(rows.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])))


def parse(form: MultiDict, current_dialogue: dict | None = None) -> tuple[dict, list[int]]:
    """The form's task fields (raw, for clean_task_fields) and its blacklist group ids."""
    data = {k: form.get(k, "").strip() for k in (
        "name", "alias", "direction", "script_mode", "script_id", "fallback_script_id",
        "line_id", "max_concurrency", "background_sound", "date_start", "date_end",
        "call_time_template_id", "transfer_group_id", "max_attempts", "ring_timeout_s",
        "max_call_s")}
    data["tags"] = [t for t in re.split(r"[,，\s]+", form.get("tags", "")) if t]
    for name in CHECKBOXES:
        data[name] = name in form
    data["end_action"] = TaskEndAction.PAUSE_RELEASE if "pause_release" in form \
        else TaskEndAction.STOP
    interval = form.get("call_interval", "0")
    data["call_interval_s"] = form.get("call_interval_custom", "").strip() \
        if interval == "custom" else interval
    data["redial_statuses"] = form.getlist("redial_statuses")
    minutes = form.get("redial_interval_min", "").strip()
    data["redial_interval_s"] = int(minutes) * 60 if minutes.isdigit() else minutes or 0

    weekly: dict[str, list] = {}
    for (day, _i), seg in _rows(form, "weekly").items():
        if day in WEEKDAYS and (seg.get("start") or seg.get("end")):
            weekly.setdefault(day, []).append([seg.get("start", ""), seg.get("end", "")])
    data["weekly"] = weekly
    data["forbidden_ranges"] = [
        [r.get("start", ""), r.get("end", "")] for r in _rows(form, "forbidden").values()
        if r.get("start") or r.get("end")]
    data["timed_scripts"] = [
        {"start": r.get("start", ""), "end": r.get("end", ""), "script_id": r.get("script")}
        for r in _rows(form, "timed").values() if r.get("script") or r.get("start")]
    if data["script_mode"] != ScriptMode.BY_TIME:
        data["timed_scripts"], data["fallback_script_id"] = [], ""

    rule = form.get("lead_rule_id", "").strip()
    data["lead_allocation"] = {"rule_id": int(rule)} if rule.isdigit() else {}
    data["qc_rule"] = {"enabled": "qc_enabled" in form,
                       "instructions": form.get("qc_instructions", "").strip()}

    dialogue = dict(current_dialogue or {})
    for key in DIALOGUE_LIMITS:
        dialogue[key] = form.get(f"dlg_{key}", "").strip()
    asr = form.get("dlg_asr", "").strip()
    if asr:
        dialogue["asr"] = {**(dialogue.get("asr") or {}), "kind": asr}
    else:
        dialogue.pop("asr", None)
    dialogue["transfer_on_grades"] = [g for g in form.getlist("transfer_on_grades")
                                      if g in set(Grade)]
    closing = form.get("dlg_closing_prompt", "").strip()
    kept = dialogue.get("closing_prompt")
    if isinstance(kept, dict) and kept.get("text", "") == closing:
        pass  # a recorded closing line (set by API) the form shows only as its text
    elif closing:
        dialogue["closing_prompt"] = closing
    else:
        dialogue.pop("closing_prompt", None)
    data["dialogue_settings"] = dialogue
    groups = [int(g) for g in form.getlist("blacklist_group_ids") if g.isdigit()]
    return data, groups


def clean_for_account(data: dict, account_id: int, partial: bool = False,
                      task_id: int | None = None) -> dict:
    """clean_task_fields plus: every id the fields name belongs to `account_id`, and the
    alias is free in it. Raises ValidationError (field → Chinese message)."""
    cleaned = clean_task_fields(data, partial=partial)
    bad = {}

    def mine(model, row_id) -> bool:
        return db.session.scalar(select(model.id).where(
            model.id == row_id, model.account_id == account_id)) is not None

    for field, model in REFERENCES.items():
        ref = cleaned.get(field)
        if ref is not None and not mine(model, ref):
            bad[field] = f"{ref} 不存在"
    for row in cleaned.get("timed_scripts") or ():
        if not mine(Script, row["script_id"]):
            bad["timed_scripts"] = f"话术 {row['script_id']} 不存在"
    rule_id = (cleaned.get("lead_allocation") or {}).get("rule_id")
    if rule_id is not None and not mine(LeadAllocationRule, rule_id):
        bad["lead_allocation"] = f"分配规则 {rule_id} 不存在"
    sound = cleaned.get("background_sound")
    if sound and db.session.scalar(select(ScriptPrompt.id).where(
            ScriptPrompt.file_name == sound, ScriptPrompt.account_id == account_id)) is None:
        bad["background_sound"] = f"背景音 {sound} 不存在"
    if cleaned.get("alias"):
        clash = select(Task.id).where(Task.account_id == account_id,
                                      Task.alias == cleaned["alias"])
        if task_id is not None:
            clash = clash.where(Task.id != task_id)
        if db.session.scalar(clash) is not None:
            bad["alias"] = f"别名 {cleaned['alias']} 已被其他任务使用"
    if bad:
        raise ValidationError(bad)
    return cleaned


def blacklist_groups(account_id: int, ids: list[int]) -> list[BlacklistGroup]:
    if not ids:
        return []
    return list(db.session.scalars(select(BlacklistGroup).where(
        BlacklistGroup.id.in_(ids), BlacklistGroup.account_id == account_id)))
