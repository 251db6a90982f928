"""The OpenAPI 3.1 document for /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from flask import jsonify

from core.call_columns import BY_KEY as CALL_COLUMNS
from core.call_query import FIELDS as CALL_FILTER_FIELDS
from core.enums import CallStatus, Direction, Grade, JobState, ScriptMode, TaskEndAction, TaskState
from webui.api import bp
from webui.api.calls import FILTER_HELP
from webui.api.serialise import CALL_FIELDS


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = _json(_ref("Error"), "Error")
ERRORS = {"401": ERROR, "403": ERROR, "404": ERROR}
PAGING = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                    "maximum": 100}},
]
TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "integer"}}


def _page_of(name: str) -> dict:
    return {"type": "object", "required": ["items", "page", "per_page", "total"], "properties": {
        "items": {"type": "array", "items": _ref(name)}, "page": {"type": "integer"},
        "per_page": {"type": "integer"}, "total": {"type": "integer"}}}


def _enum(values) -> dict:
    return {"type": "string", "enum": [v.value for v in values]}


OBJ = {"type": "object"}
ARR = {"type": "array"}
INT = {"type": "integer"}
NULL_INT = {"type": ["integer", "null"]}
TASK_INPUT = {
    "name": {"type": "string", "maxLength": 120}, "tags": {"type": "array",
                                                          "items": {"type": "string"}},
    "direction": _enum(Direction), "script_mode": _enum(ScriptMode), "script_id": NULL_INT,
    "fallback_script_id": NULL_INT, "timed_scripts": ARR, "qc_rule": OBJ, "line_id": NULL_INT,
    "max_concurrency": {"type": "integer", "minimum": 1},
    "call_interval_s": {"type": "integer", "minimum": 0, "description": "0 means auto"},
    "background_sound": {"type": ["string", "null"]},
    "date_start": {"type": ["string", "null"], "format": "date"},
    "date_end": {"type": ["string", "null"], "format": "date"},
    "weekly": {"type": "object", "description": 'e.g. {"mon": [["09:00", "18:00"]]}'},
    "call_time_template_id": NULL_INT, "skip_holidays": {"type": "boolean"},
    "forbidden_ranges": ARR, "lead_allocation": OBJ, "transfer_group_id": NULL_INT,
    "pause_when_agents_busy": {"type": "boolean"}, "predictive": {"type": "boolean"},
    "predictive_busy_to_ai": {"type": "boolean"}, "end_action": _enum(TaskEndAction),
    "dialogue_settings": OBJ, "quota": OBJ,
}


STR = {"type": "string"}
TIME = {"type": ["string", "null"], "format": "date-time"}
GROUP_ID = {"name": "group_id", "in": "path", "required": True, "schema": INT}
AFTER_CALL_SCHEMAS = {
    "BlacklistGroup": {"type": "object", "properties": {
        "id": INT, "name": STR, "description": STR, "created_at": TIME,
        "release_days": {"type": ["integer", "null"],
                         "description": "entries added are released after this many days"}}},
    "BlacklistEntry": {"type": "object", "properties": {
        "id": INT, "group_id": INT, "phone": STR, "reason": STR, "source": STR,
        "created_at": TIME, "expires_at": TIME, "live": {"type": "boolean"}}},
    "SmsMessage": {"type": "object", "properties": {
        "id": INT, "call_id": NULL_INT, "phone": STR, "content": STR,
        "state": {"type": "string", "enum": ["queued", "sending", "sent", "delivered",
                                             "failed"]},
        "attempts": INT, "error": {"type": ["string", "null"]}, "created_at": TIME,
        "sent_at": TIME}},
    "PushMessage": {"type": "object", "properties": {
        "id": INT, "call_id": NULL_INT, "group_id": NULL_INT, "user_id": NULL_INT,
        "state": {"type": "string", "enum": ["queued", "sending", "pushed", "seen", "failed"]},
        "attempts": INT, "error": {"type": ["string", "null"]}, "sent_at": TIME,
        "seen_at": TIME}},
}


def after_call_paths() -> dict:
    """Blacklist (P5) and after-call results (issue 10)."""
    return {
        "/blacklist/groups": {"get": {
            "summary": "Blacklist groups", "operationId": "listBlacklistGroups",
            "parameters": PAGING,
            "responses": {"200": _json(_page_of("BlacklistGroup"), "Groups"), **ERRORS}}},
        "/blacklist/groups/{group_id}/entries": {"parameters": [GROUP_ID], "post": {
            "summary": "Add numbers to a blacklist group", "operationId": "addBlacklistEntries",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["phones"], "properties": {
                    "phones": {"type": "array", "maxItems": 10000, "items": STR},
                    "reason": STR,
                    "expires_at": {"type": ["string", "null"], "format": "date-time",
                                   "description": "release time; null: never; absent: "
                                                  "the group's release_days"}}}}}},
            "responses": {"201": _json({"type": "object", "properties": {
                "added": ARR, "updated": ARR, "invalid": ARR}}, "Added"),
                "422": ERROR, **ERRORS}}},
        "/blacklist/entries": {"get": {
            "summary": "Blacklist entries", "operationId": "listBlacklistEntries",
            "parameters": PAGING + [
                {"name": "group_id", "in": "query", "schema": INT},
                {"name": "phone", "in": "query", "schema": STR},
                {"name": "live", "in": "query", "schema": {"type": "string",
                                                           "enum": ["true"]}}],
            "responses": {"200": _json(_page_of("BlacklistEntry"), "Entries"), **ERRORS}}},
        "/blacklist/entries/{entry_id}": {
            "parameters": [{"name": "entry_id", "in": "path", "required": True,
                            "schema": INT}],
            "delete": {"summary": "Remove a blacklist entry",
                       "operationId": "deleteBlacklistEntry",
                       "responses": {"204": {"description": "Removed"}, **ERRORS}}},
        "/calls/{call_id}/after-call": {
            "parameters": [{"name": "call_id", "in": "path", "required": True,
                            "schema": INT}],
            "get": {"summary": "After-call jobs, SMS and notices of a call",
                    "operationId": "readCallAfterCall",
                    "responses": {"200": _json({"type": "object", "properties": {
                        "call_id": INT, "sms": {"type": ["object", "null"]},
                        "push": {"type": ["object", "null"]}, "jobs": ARR,
                        "sms_messages": {"type": "array", "items": _ref("SmsMessage")},
                        "push_messages": {"type": "array", "items": _ref("PushMessage")}}},
                        "Results"), **ERRORS}}},
        "/sms-messages": {"get": {
            "summary": "Hang-up SMS sent", "operationId": "listSmsMessages",
            "parameters": PAGING + [{"name": "state", "in": "query", "schema": STR},
                                    {"name": "phone", "in": "query", "schema": STR}],
            "responses": {"200": _json(_page_of("SmsMessage"), "Messages"), **ERRORS}}},
    }


def document() -> dict:
    task_props = {**TASK_INPUT, "id": INT, "state": _enum(TaskState),
                  "created_at": {"type": "string", "format": "date-time"},
                  "started_at": {"type": ["string", "null"], "format": "date-time"},
                  "finished_at": {"type": ["string", "null"], "format": "date-time"},
                  "numbers": {"type": "object", "additionalProperties": INT}}
    call_props = {f: {} for f in CALL_FIELDS} | {
        "id": INT, "status": {"type": ["string", "null"],
                              "enum": [s.value for s in CallStatus] + [None]},
        "grade": {"type": ["string", "null"], "enum": [g.value for g in Grade] + [None]},
        "has_recording": {"type": "boolean"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "AI outbound call centre API", "version": "1.0.0",
                 "description": "Bearer tokens are created in the console (系统设置 → API "
                                "tokens) or with `manage token create`."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/tasks": {
                "get": {"summary": "List tasks", "operationId": "listTasks",
                        "parameters": PAGING + [{"name": "state", "in": "query",
                                                 "schema": _enum(TaskState)}],
                        "responses": {"200": _json(_page_of("Task"), "Tasks"), **ERRORS}},
                "post": {"summary": "Create a task", "operationId": "createTask",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": _ref("TaskInput")}}},
                         "responses": {"201": _json(_ref("Task"), "Created"),
                                       "422": ERROR, **ERRORS}}},
            "/tasks/{task_id}": {
                "parameters": [TASK_ID],
                "get": {"summary": "Read a task", "operationId": "readTask",
                        "responses": {"200": _json(_ref("Task"), "Task"), **ERRORS}},
                "patch": {"summary": "Update a task", "operationId": "updateTask",
                          "requestBody": {"required": True, "content": {"application/json": {
                              "schema": _ref("TaskInput")}}},
                          "responses": {"200": _json(_ref("Task"), "Updated"), "409": ERROR,
                                        "422": ERROR, **ERRORS}}},
            "/tasks/{task_id}/start": {"parameters": [TASK_ID], "post": {
                "summary": "Start or resume a task (checks the line's concurrency)",
                "operationId": "startTask",
                "responses": {"200": _json(_ref("Task"), "Running"), "409": ERROR, **ERRORS}}},
            "/tasks/{task_id}/pause": {"parameters": [TASK_ID], "post": {
                "summary": "Pause a task", "operationId": "pauseTask",
                "responses": {"200": _json(_ref("Task"), "Paused"), "409": ERROR, **ERRORS}}},
            "/tasks/{task_id}/numbers": {"parameters": [TASK_ID], "post": {
                "summary": "Add numbers to a task", "operationId": "addNumbers",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["numbers"], "properties": {
                        "numbers": {"type": "array", "maxItems": 10000, "items": {"oneOf": [
                            {"type": "string"},
                            {"type": "object", "required": ["phone"], "properties": {
                                "phone": {"type": "string"}, "variables": OBJ}}]}},
                        "partial": {"type": "boolean", "description":
                                    "add the valid numbers even when some are invalid"}}}}}},
                "responses": {"201": _json({"type": "object", "properties": {
                    "added": INT, "duplicates": ARR, "rejected": ARR}}, "Added"),
                    "413": ERROR, "422": ERROR, **ERRORS}}},
            "/tasks/{task_id}/imports": {"parameters": [TASK_ID], "post": {
                "summary": "Import numbers from a file (runs as a job; follow its notification)",
                "operationId": "importNumbers",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"], "properties": {
                        "file": {"type": "string", "format": "binary", "description":
                                 ".xlsx, .xls or .csv, header row first, at most 250000 rows"},
                        "mode": {"type": "string", "enum": ["normal", "fast"], "description":
                                 "normal checks and de-duplicates; fast stores the numbers "
                                 "unchecked"},
                        "shuffle": {"type": "boolean", "description":
                                    "dial the numbers in random order"}}}}}},
                "responses": {"202": _json(_ref("Notification"), "Import queued"),
                              "413": ERROR, "422": ERROR, **ERRORS}}},
            "/calls": {"get": {
                "summary": "Query call records", "operationId": "listCalls",
                "parameters": PAGING + [
                    {"name": n, "in": "query", "schema": s} for n, s in (
                        ("task_id", INT), ("status", _enum(CallStatus)), ("grade", _enum(Grade)),
                        ("phone", {"type": "string"}), ("hangup_side", {"type": "string"}),
                        ("direction", _enum(Direction)), ("min_talk_seconds", INT),
                        ("since", {"type": "string", "format": "date-time"}),
                        ("until", {"type": "string", "format": "date-time"}))] + [
                    {"name": "filter", "in": "query", "description": FILTER_HELP,
                     "content": {"application/json": {"schema": _ref("ConditionGroup")}}}],
                "responses": {"200": _json(_page_of("Call"), "Calls"), "400": ERROR,
                              **ERRORS}}},
            "/calls/exports": {"post": {
                "summary": "Export call records to xlsx in the background",
                "operationId": "exportCalls",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        "filter": _ref("ConditionGroup"),
                        "columns": {"type": "array", "minItems": 1,
                                    "items": {"type": "string", "enum": list(CALL_COLUMNS)},
                                    "description": "in the order wanted"},
                        "mask": {"type": "boolean", "default": True, "description":
                                 "hide the middle digits; false for administrators only"}}}}}},
                "responses": {"202": _json(_ref("Notification"), "Queued; follow it in "
                                           "/notifications"), "400": ERROR, "422": ERROR,
                              **ERRORS}}},
            **after_call_paths(),
            "/notifications": {"get": {
                "summary": "The caller's notifications", "operationId": "listNotifications",
                "parameters": PAGING,
                "responses": {"200": _json(_page_of("Notification"), "Notifications"),
                              **ERRORS}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"], "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"},
                        "fields": {"type": "object"}}}}},
                "TaskInput": {"type": "object", "properties": {
                    **TASK_INPUT, "account_id": {"type": "integer", "description":
                                                 "a sub-account you manage (create only)"}},
                              "additionalProperties": False},
                "Task": {"type": "object", "properties": task_props},
                "Call": {"type": "object", "properties": call_props},
                "ConditionGroup": {"type": "object", "required": ["conditions"], "properties": {
                    "op": {"type": "string", "enum": ["and", "or"]},
                    "conditions": {"type": "array", "items": {"oneOf": [
                        _ref("ConditionGroup"),
                        {"type": "object", "required": ["field", "op"], "properties": {
                            "field": {"type": "string", "enum": list(CALL_FILTER_FIELDS)},
                            "op": {"type": "string"}, "value": {}}}]}}}},
                **AFTER_CALL_SCHEMAS,
                "Notification": {"type": "object", "properties": {
                    "id": INT, "kind": {"type": "string"}, "title": {"type": "string"},
                    "state": _enum(JobState), "progress": INT, "total": INT, "done": INT,
                    "failed": INT, "error": {"type": ["string", "null"]},
                    "read": {"type": "boolean"}}},
            },
        },
    }


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())
