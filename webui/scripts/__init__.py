"""话术设计 (script design): scripts with versions, the flow editor, recorded prompts and a
test-call box that runs the script against typed text (FEATURES.md C3)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_required

from core.dialogue import grading, schema
from core.dialogue.engine import Hangup, Say, ScriptEngine, SendSms, Transfer
from core.dialogue.versions import save_version
from core.enums import Role
from core.models import Script, ScriptPrompt, ScriptVersion
from core.tts import AudioError, CachedTts, EspeakTts, TtsError, convert_file
from webui.extensions import db
from webui.security import actor, audit, get_visible_or_404, require_role, select_visible

bp = Blueprint("scripts", __name__, url_prefix="/scripts")
SILENCE = "__silence__"
MAX_TEST_TURNS = 40
MAX_BODY = 512 * 1024


@bp.before_request
@login_required
@require_role(Role.ADMIN, Role.STAFF)
def _staff_only():
    """Administrators and staff design scripts."""


def _prompts_dir() -> Path:
    return current_app.config["SETTINGS"].dialogue.prompts_dir


def _tts() -> CachedTts:
    conf = current_app.config["SETTINGS"].dialogue
    return CachedTts(EspeakTts(), conf.prompts_dir / "tts-cache", voice=conf.tts_voice)


def _current(script: Script) -> ScriptVersion | None:
    return db.session.scalar(db.select(ScriptVersion).where(
        ScriptVersion.script_id == script.id, ScriptVersion.version == script.current_version))


@bp.route("/", methods=["GET", "POST"])
def index():
    if request.method == "POST":
        name = (request.form.get("name") or "").strip()[:120]
        if not name:
            flash(_("Give the script a name."), "danger")
            return redirect(url_for("scripts.index"))
        script = Script(account_id=actor().account_id, name=name,
                        description=(request.form.get("description") or "")[:2000])
        db.session.add(script)
        db.session.flush()
        save_version(db.session, script, schema.EXAMPLE, actor().id)
        audit("script.create", script, name=name)
        db.session.commit()
        return redirect(url_for("scripts.edit", script_id=script.id))
    rows = db.session.scalars(select_visible(Script).order_by(Script.id.desc())).all()
    return render_template("scripts/index.html", rows=rows)


def _page(script: Script, body_text: str | None = None, errors=(), transcript=None,
          history=(), status: int = 200):
    version = _current(script)
    body = version.body if version else {}
    try:
        flow = schema.parse(json.loads(body_text) if body_text else body)
    except (schema.ScriptError, ValueError):
        flow = None
    versions = db.session.scalars(db.select(ScriptVersion).where(
        ScriptVersion.script_id == script.id).order_by(ScriptVersion.version.desc())).all()
    prompts = db.session.scalars(select_visible(ScriptPrompt).where(
        ScriptPrompt.script_id == script.id).order_by(ScriptPrompt.id)).all()
    return render_template(
        "scripts/edit.html", script=script, version=version, flow=flow,
        body_text=body_text or json.dumps(body, ensure_ascii=False, indent=2), errors=errors,
        versions=versions, prompts=prompts, transcript=transcript,
        history=json.dumps(list(history), ensure_ascii=False), silence=SILENCE,
        builtins=schema.builtin_intent_names()), status


@bp.route("/<int:script_id>")
def edit(script_id: int):
    return _page(get_visible_or_404(Script, script_id))


@bp.route("/<int:script_id>/save", methods=["POST"])
def save(script_id: int):
    script = get_visible_or_404(Script, script_id)
    text = request.form.get("body") or ""
    if len(text) > MAX_BODY:
        return _page(script, text, [_("The script is too large.")], status=400)
    try:
        body = json.loads(text)
    except ValueError as exc:
        return _page(script, text, [_("Not valid JSON: %(error)s", error=str(exc))],
                     status=400)
    errors = schema.validate(body)
    if errors:
        return _page(script, text, errors, status=400)
    name = (request.form.get("name") or "").strip()[:120]
    if name:
        script.name = name
    row = save_version(db.session, script, body, actor().id)
    audit("script.save", script, version=row.version)
    db.session.commit()
    flash(_("Saved as version %(n)d. Running tasks keep the version they started with.",
            n=row.version), "success")
    return redirect(url_for("scripts.edit", script_id=script.id))


_SAFE_NAME = re.compile(r"[^0-9A-Za-z_.-]+")


@bp.route("/<int:script_id>/prompts", methods=["POST"])
def upload(script_id: int):
    script = get_visible_or_404(Script, script_id)
    upload = request.files.get("file")
    label = (request.form.get("label") or "").strip()[:120]
    if upload is None or not upload.filename:
        flash(_("Choose an audio file."), "danger")
        return redirect(url_for("scripts.edit", script_id=script.id))
    stem = _SAFE_NAME.sub("_", Path(upload.filename).stem)[:60] or "prompt"
    file_name = f"{stem}-{uuid.uuid4().hex[:8]}.wav"
    dest = _prompts_dir() / str(script.account_id) / file_name
    try:
        duration = convert_file(upload.stream, dest)
    except AudioError as exc:
        flash(_("Not an audio file we can read: %(error)s", error=str(exc)), "danger")
        return redirect(url_for("scripts.edit", script_id=script.id))
    row = ScriptPrompt(account_id=script.account_id, script_id=script.id,
                       label=label or upload.filename[:120], file_name=file_name,
                       duration_ms=duration)
    db.session.add(row)
    audit("script.prompt_upload", script, file=file_name)
    db.session.commit()
    flash(_("Uploaded %(name)s (%(s).1f s); use it in a node as \"audio\": \"%(file)s\".",
            name=row.label, s=duration / 1000, file=file_name), "success")
    return redirect(url_for("scripts.edit", script_id=script.id))


@bp.route("/<int:script_id>/prompts/<int:prompt_id>.wav")
def prompt_audio(script_id: int, prompt_id: int):
    row = get_visible_or_404(ScriptPrompt, prompt_id)
    if row.script_id != script_id:
        abort(404)
    path = _prompts_dir() / str(row.account_id) / row.file_name
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="audio/wav")


def run_test(body: dict, inputs: list[str], variables: dict) -> dict:
    """Replay a test conversation: the robot's lines and the callee's inputs in order, the
    node, intents, tags, score and the grade the call would get now."""
    flow = schema.parse(body)
    if flow.mode == "llm":
        raise schema.ScriptError([_("The test box runs flow scripts; LLM mode needs a call.")])
    engine = ScriptEngine(flow, variables)
    lines: list[dict] = []

    def emit(cmds):
        for cmd in cmds:
            if isinstance(cmd, Say):
                lines.append({"who": "robot", "text": cmd.text, "node": cmd.node,
                              "kind": cmd.kind, "audio": cmd.audio})
            elif isinstance(cmd, Hangup):
                lines.append({"who": "system", "text": _("Hang-up (%(why)s)", why=cmd.reason)})
            elif isinstance(cmd, Transfer):
                lines.append({"who": "system", "text": _("Transfer to %(t)s", t=cmd.target)})
            elif isinstance(cmd, SendSms):
                lines.append({"who": "system", "text": _("SMS template %(t)s after the call",
                                                         t=cmd.template_id)})

    emit(engine.start())
    for text in inputs[:MAX_TEST_TURNS]:
        if engine.state.ended:
            break
        if text == SILENCE:
            lines.append({"who": "callee", "text": _("(silence)")})
            emit(engine.on_no_input())
        else:
            before, idx = len(engine.state.intents), len(lines)
            lines.append({"who": "callee", "text": text})
            emit(engine.on_utterance(text))
            lines[idx]["intents"] = engine.state.intents[before:]
    st = engine.state
    facts = grading.CallFacts(intents=tuple(st.intents), tags=tuple(st.tags),
                              nodes=tuple(st.nodes), score=st.score,
                              turns=st.interactions, unrecognised=st.unrecognised,
                              assistant=st.assistant)
    grade, reasons = grading.grade(facts, flow.grading)
    return {"lines": lines, "node": st.node, "ended": st.ended, "tags": st.tags,
            "score": st.score, "intents": st.intents, "grade": grade.value,
            "reasons": reasons}


@bp.route("/<int:script_id>/test", methods=["POST"])
def test_call(script_id: int):
    script = get_visible_or_404(Script, script_id)
    text = request.form.get("body") or ""
    try:
        body = json.loads(text)
        history = json.loads(request.form.get("history") or "[]")
        variables = json.loads(request.form.get("variables") or "{}")
    except ValueError as exc:
        return _page(script, text, [_("Not valid JSON: %(error)s", error=str(exc))],
                     status=400)
    if request.form.get("action") == "restart":
        history = []
    elif request.form.get("action") == "silence":
        history.append(SILENCE)
    elif (request.form.get("say") or "").strip():
        history.append(request.form["say"].strip()[:500])
    try:
        transcript = run_test(body, [str(h) for h in history],
                              variables if isinstance(variables, dict) else {})
    except schema.ScriptError as exc:
        return _page(script, text, exc.errors, status=400)
    transcript["variables"] = json.dumps(variables, ensure_ascii=False)
    return _page(script, text, transcript=transcript, history=history)


@bp.route("/tts")
def tts():
    """The robot's line as speech (espeak-ng, cached), for the test box."""
    text = (request.args.get("text") or "").strip()[:500]
    if not text:
        abort(404)
    try:
        path = _tts().synthesize(text)
    except TtsError:
        abort(503)
    return send_file(path, mimetype="audio/wav")
