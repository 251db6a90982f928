"""The demo account (issue 11): a whole campaign on simswitch for someone who just cloned the
repository — a line, a Chinese script with recorded and TTS prompts, knowledge Q&A and a
transfer node, an agent, an SMS template and a post-call rule, and a task of a few hundred
numbers whose simulated callees answer, talk, refuse, are busy, vacant or switched off.

The demo lives in its own main account (`Account.is_demo`), with its own administrator
(`demo`) and agent (`demo-agent`): administrators of real accounts never see its rows (core/
scoping.py), and removing it deletes that account — everything in it goes by ON DELETE
CASCADE — and the files it made, nothing else.

    login = create(session, settings)          # rows + audio + simswitch scenario; commits
    path = prepare(session, settings)          # (re)makes missing files of an existing demo
    removed = remove(session, settings, conn=redis_conn, wait_s=30)

Files: DATA_DIR/demo/ (scenario.json, audio/, password), PROMPTS_DIR/<account id>/ (the
script's recorded prompts), the recordings of the demo's calls. The TTS cache
(PROMPTS_DIR/tts-cache) is shared by all accounts and kept.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import soundfile
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core import clock
from core.demo import content as C
from core.demo import media
from core.demo import scenario as S
from core.demo.media import DemoAudioError
from core.enums import NumberState, Role, ScriptMode, TaskState, TransferStrategy
from core.models import (
    Account,
    Call,
    Line,
    Notification,
    PostCallRule,
    Script,
    ScriptPrompt,
    ScriptVersion,
    SmsTemplate,
    Task,
    TaskNumber,
    TransferGroup,
    TransferGroupMember,
    User,
)
from core.settings import Settings

log = logging.getLogger(__name__)

VARIABLE = "演示场景"  # each demo number's imported variable: what its callee will do
LIVE_FOR = timedelta(hours=1)  # a call row not ended after this long is not live any more

__all__ = ["DemoAudioError", "DemoError", "DemoLogin", "Removal", "agent_ready", "clear_stale",
           "create", "find", "login", "prepare", "remove", "scenario_path"]


class DemoError(ValueError):
    """The demo cannot be created here; the message says why."""


@dataclass(frozen=True)
class DemoLogin:
    account_id: int
    username: str
    agent_username: str
    password: str  # both users'
    task_id: int | None
    created: bool


@dataclass(frozen=True)
class Removal:
    found: bool
    calls: int = 0
    files: int = 0
    live_calls: int = 0  # demo calls still live when the rows went (waited wait_s)


def demo_dir(settings: Settings) -> Path:
    return settings.data_dir / "demo"


def scenario_path(settings: Settings) -> Path:
    """Where the demo's simswitch scenario is written (it exists while the demo does)."""
    return demo_dir(settings) / "scenario.json"


def _password(settings: Settings) -> str:
    path = demo_dir(settings) / "password"
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(9)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def clear_stale(settings: Settings) -> None:
    """Forget demo files left without a demo account (a database started afresh), so that
    simswitch does not pick up an old demo scenario."""
    shutil.rmtree(demo_dir(settings), ignore_errors=True)


def find(session: Session) -> Account | None:
    return session.scalar(select(Account).where(Account.is_demo.is_(True)).order_by(Account.id))


def _users(session: Session, account: Account) -> tuple[User | None, User | None]:
    users = session.scalars(select(User).where(User.account_id == account.id)).all()
    admin = next((u for u in users if u.role == Role.ADMIN), None)
    agent = next((u for u in users if u.role == Role.AGENT), None)
    return admin, agent


def _task(session: Session, account: Account) -> Task | None:
    return session.scalar(select(Task).where(Task.account_id == account.id,
                                             Task.name == C.TASK_NAME).order_by(Task.id))


def login(session: Session, settings: Settings) -> DemoLogin | None:
    """The existing demo's users and password, or None when there is no demo."""
    account = find(session)
    if account is None:
        return None
    admin, agent = _users(session, account)
    task = _task(session, account)
    password = _password(settings)
    for user in (admin, agent):  # a lost password file: the users get the new one
        if user is not None and not user.check_password(password):
            user.set_password(password)
    session.commit()
    return DemoLogin(account.id, admin.username if admin else "",
                     agent.username if agent else "", password, task.id if task else None,
                     created=False)


def _free_extension(session: Session) -> str:
    taken = set(session.scalars(select(User.sip_extension).where(
        User.sip_extension.is_not(None))))
    for n in range(int(C.AGENT_EXTENSION), int(C.AGENT_EXTENSION) + 100):
        if str(n) not in taken:
            return str(n)
    raise DemoError("no free agent extension in 8001-8100")


def _write_prompts(settings: Settings, account_id: int) -> dict[str, tuple[str, int]]:
    """The script's fixed lines as recorded prompt files (the TTS voice, a little faster
    than TTS and without its trailing silence): key → (file name, ms)."""
    folder = settings.dialogue.prompts_dir / str(account_id)
    out = {}

    def make(key: str) -> None:
        name = f"demo-{key}.wav"
        dest = folder / name
        if not dest.is_file():
            media.write(dest, media.prompt(C.RECORDED[key], settings.dialogue.tts_voice))
        out[key] = (name, int(soundfile.info(str(dest)).duration * 1000))

    media.require_espeak()
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        list(pool.map(make, C.RECORDED))
    return out


def _prewarm_tts(settings: Settings) -> None:
    """The lines spoken by TTS at call time (the opening names the callee), synthesised now
    into the controller's TTS cache so that no call waits for espeak-ng."""
    from core.tts import CachedTts, EspeakTts

    d = settings.dialogue
    tts = CachedTts(EspeakTts(), d.prompts_dir / "tts-cache", voice=d.tts_voice)
    texts = [C.OPENING.replace("{姓名}", name) for name in C.NAMES]
    texts += [C.NO_INPUT, C.NO_MATCH, C.CLOSING]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        list(pool.map(tts.synthesize, texts))


def create(session: Session, settings: Settings, count: int = C.DEMO_NUMBERS) -> DemoLogin:
    """Create the demo account with everything in it, its audio and its simswitch scenario.
    An existing demo is kept (its missing files are made again). Commits."""
    existing = login(session, settings)
    if existing is not None:
        prepare(session, settings)
        return existing
    if count < 1:
        raise DemoError("the demo task needs at least one number")
    clash = session.scalar(select(User.username).where(
        User.username.in_([C.ADMIN_USERNAME, C.AGENT_USERNAME])))
    if clash:
        raise DemoError(f"a user named {clash!r} exists already; the demo needs that name")
    started = time.monotonic()
    password = _password(settings)
    account = Account(name=C.ACCOUNT_NAME, timezone=settings.timezone, is_demo=True)
    session.add(account)
    session.flush()
    aid = account.id
    try:
        prompts = _write_prompts(settings, aid)
        _build_rows(session, account, password, prompts, count)
        session.commit()
    except BaseException:
        session.rollback()
        shutil.rmtree(settings.dialogue.prompts_dir / str(aid), ignore_errors=True)
        raise
    try:
        path = prepare(session, settings)
    except BaseException:  # no half demo: its rows go again
        session.rollback()
        session.execute(delete(Account).where(Account.id == aid))
        session.commit()
        shutil.rmtree(settings.dialogue.prompts_dir / str(aid), ignore_errors=True)
        clear_stale(settings)
        raise
    log.info("demo account %s created in %.1f s; scenario %s", aid,
             time.monotonic() - started, path)
    task = _task(session, account)
    return DemoLogin(aid, C.ADMIN_USERNAME, C.AGENT_USERNAME, password, task.id, created=True)


def _build_rows(session: Session, account: Account, password: str,
                prompts: dict[str, tuple[str, int]], count: int) -> None:
    aid = account.id
    admin = User(account_id=aid, username=C.ADMIN_USERNAME, display_name="演示管理员",
                 role=Role.ADMIN)
    agent = User(account_id=aid, username=C.AGENT_USERNAME, display_name="客服小王",
                 role=Role.AGENT, sip_extension=_free_extension(session),
                 sip_password=secrets.token_urlsafe(12))
    for user in (admin, agent):
        user.set_password(password)
    line = Line(account_id=aid, name=C.LINE_NAME, gateway=C.GATEWAY, **C.LINE)
    group = TransferGroup(account_id=aid, name=C.GROUP_NAME, strategy=TransferStrategy.ORDER,
                          ring_timeout_s=20)
    session.add_all([admin, agent, line, group])
    session.flush()
    session.add(TransferGroupMember(account_id=aid, group_id=group.id, user_id=agent.id))

    script = Script(account_id=aid, name=C.SCRIPT_NAME, current_version=1,
                    description="演示话术：开场白用 TTS 念出客户姓名，其余为录音；含知识库问答"
                                "（价格、是不是机器人）和转人工节点。")
    session.add(script)
    session.flush()
    for key, (name, ms) in prompts.items():
        session.add(ScriptPrompt(account_id=aid, script_id=script.id, label=f"演示录音：{key}",
                                 file_name=name, duration_ms=ms))
    # A minute in the past: a task started at once pins this version (core.dialogue.versions).
    session.add(ScriptVersion(
        account_id=aid, script_id=script.id, version=1, created_by_id=admin.id,
        body=C.script_body({k: name for k, (name, _ms) in prompts.items()}, group.id),
        created_at=clock.now() - timedelta(minutes=1)))

    task = Task(account_id=aid, name=C.TASK_NAME, alias="demo", created_by_id=admin.id,
                script_mode=ScriptMode.UNIFIED, script_id=script.id, line_id=line.id,
                transfer_group_id=group.id, state=TaskState.DRAFT, **C.TASK)
    session.add(task)
    session.flush()
    template = SmsTemplate(account_id=aid, **C.SMS_TEMPLATE)
    session.add(template)
    session.flush()
    session.add(PostCallRule(account_id=aid, task_id=task.id, name=C.SMS_RULE["name"],
                             conditions=C.SMS_RULE["conditions"],
                             actions=[{"type": "sms", "template_id": template.id}]))
    _add_numbers(session, task, C.numbers(count))


def _add_numbers(session: Session, task: Task, numbers: list[C.DemoNumber]) -> None:
    from core.phone_info import lookup

    rows = []
    for position, n in enumerate(numbers):
        region, carrier = lookup(n.phone)
        rows.append({"account_id": task.account_id, "task_id": task.id, "phone": n.phone,
                     "raw_phone": n.phone, "position": position, "state": NumberState.PENDING,
                     "region": region, "carrier": carrier, "created_at": clock.now(),
                     "variables": {"姓名": n.name, VARIABLE: C.BY_NAME[n.outcome].label}})
    session.execute(TaskNumber.__table__.insert(), rows)


def _scenario_numbers(session: Session, account: Account) -> dict[str, str]:
    """phone → outcome name, read back from the demo numbers' VARIABLE."""
    by_label = {o.label: o.name for o in C.OUTCOMES}
    out = {}
    for phone, variables in session.execute(select(TaskNumber.phone, TaskNumber.variables)
                                            .where(TaskNumber.account_id == account.id)):
        name = by_label.get((variables or {}).get(VARIABLE))
        if name:
            out[phone] = name
    return out


def prepare(session: Session, settings: Settings) -> Path | None:
    """Make the existing demo's files that are missing (callee audio, scenario, prompts, the
    TTS cache) and return the scenario's path; None when there is no demo."""
    account = find(session)
    if account is None:
        return None
    _, agent = _users(session, account)
    folder = demo_dir(settings)
    media.make_all(S.phrases(), folder / S.AUDIO_DIR)
    missing = [p for p in session.scalars(select(ScriptPrompt.file_name).where(
        ScriptPrompt.account_id == account.id))
        if not (settings.dialogue.prompts_dir / str(account.id) / p).is_file()]
    if missing:
        _write_prompts(settings, account.id)
    _prewarm_tts(settings)
    from simswitch.scenario import DEFAULT_SCENARIO, parse

    doc = S.document(_scenario_numbers(session, account), DEFAULT_SCENARIO,
                     agent.sip_extension if agent and agent.sip_extension
                     else C.AGENT_EXTENSION)
    parse(doc, folder)  # simswitch's own validation: every file there, every field right
    path = scenario_path(settings)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def agent_ready(conn, session: Session, settings: Settings, online: bool = True) -> int | None:
    """Count the demo agent's phone as registered (simswitch has no SIP: its scenario says
    the agent's extension is registered) and, with `online`, put an offline agent online.
    Returns the agent's id (None: no demo)."""
    from core.presence import AgentState, Presence

    account = find(session)
    if account is None:
        return None
    _, agent = _users(session, account)
    if agent is None:
        return None
    presence = Presence(conn, wrap_up_s=settings.agents.wrap_up_s,
                        max_missed=settings.agents.max_missed)
    snap = presence.get(agent.id)
    if online and snap.state == AgentState.OFFLINE:
        presence.set_state(agent.id, AgentState.AVAILABLE)
    if not snap.registered:
        presence.set_registered(agent.id, True)
    return agent.id


def live_calls(session: Session, account_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Call).where(
        Call.account_id == account_id, Call.state.is_not(None), Call.state != "ended",
        Call.created_at > clock.now() - LIVE_FOR)) or 0


def remove(session: Session, settings: Settings, *, conn=None, wait_s: float = 0.0,
           on_wait=None) -> Removal:
    """Delete the demo account and all of it, and its files. Running demo tasks are paused
    first (and controllers told through `conn`); live demo calls get up to `wait_s` to end
    (`on_wait(n)` is called while waiting). Commits."""
    from core.redis_conn import publish_task_change

    account = find(session)
    if account is None:
        return Removal(found=False)
    aid = account.id
    running = session.scalars(select(Task).where(Task.account_id == aid,
                                                 Task.state == TaskState.RUNNING)).all()
    for task in running:
        task.state = TaskState.PAUSED
    session.commit()
    if conn is not None:
        for task in running:
            publish_task_change(conn, task.id, task.state)
    deadline = time.monotonic() + wait_s
    live, told = live_calls(session, aid), None
    while live and time.monotonic() < deadline:
        if on_wait is not None and live != told:
            on_wait(live)
            told = live
        time.sleep(1.0)
        session.expire_all()
        live = live_calls(session, aid)

    recordings = [Path(p) for p in session.scalars(select(Call.recording_path).where(
        Call.account_id == aid, Call.recording_path.is_not(None)))]
    results = [Path(p) for p in session.scalars(select(Notification.result_path).where(
        Notification.account_id == aid, Notification.result_path.is_not(None)))]
    calls = session.scalar(select(func.count()).select_from(Call).where(
        Call.account_id == aid)) or 0
    user_ids = list(session.scalars(select(User.id).where(User.account_id == aid)))
    session.execute(delete(Account).where(Account.id == aid))  # ON DELETE CASCADE: all of it
    session.commit()

    files = 0
    for path in recordings + results:
        if path.is_file():
            path.unlink(missing_ok=True)
            files += 1
    for folder in (settings.dialogue.prompts_dir / str(aid), demo_dir(settings)):
        if folder.is_dir():
            files += sum(1 for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder, ignore_errors=True)
    if conn is not None:
        _forget_presence(conn, user_ids)
    log.info("demo account %s removed: %d calls, %d files", aid, calls, files)
    return Removal(True, calls, files, live)


def _forget_presence(conn, user_ids: list[int]) -> None:
    import redis

    from core.presence import KEY, last_pop_key

    try:
        for uid in user_ids:
            conn.delete(KEY.format(uid), last_pop_key(uid))
    except redis.RedisError as exc:
        log.warning("demo removed; its agents' presence stays in Redis: %s", exc)
