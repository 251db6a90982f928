"""Transfer to a human (转接人工, FEATURES.md C8): the pure rules, no I/O.

Who is tried and in which order (the group's strategy), why a member is skipped, what a
failed try means, what happens when every try failed (the fallback), whether a task with
agent-dependent options may dial, and what the agent's screen pop shows.

The transfer runner (controller/transfer/) carries these decisions out on a live call; the
console and the dialer use the same functions so that every process decides alike.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from core.enums import TransferStrategy

DEFAULT_RING_TIMEOUT_S = 20
# Chinese ring-back (450 Hz, 1 s on, 4 s off), looped, when a group has no 转接背景音.
DEFAULT_MUSIC = "tone_stream://%(1000,4000,450);loops=-1"
# What the AI says when nobody took the call, unless the task sets its own closing_prompt.
DEFAULT_CLOSING = "抱歉，现在客服都在忙，稍后会有专员联系您，感谢您的接听，再见。"


class Trigger(StrEnum):
    """What started a transfer."""

    SCRIPT = "script"  # a script node or a keyword action
    GRADE = "grade"  # the rule "grade reaches A during the call → transfer"
    PREDICTIVE = "predictive"  # 人工预测式外呼: on answer, straight to a human


class TransferState(StrEnum):
    SUCCESS = "success"  # an agent (or the remote number) answered and was bridged
    FAILED = "failed"


class TryResult(StrEnum):
    """The outcome of offering the call to one target."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"  # rang until the group's ring timeout
    BUSY = "busy"  # the phone said busy (486) or the agent was taken meanwhile
    REJECTED = "rejected"  # the agent declined (603)
    NOT_REGISTERED = "not_registered"  # FreeSWITCH has no registration for the extension
    FAILED = "failed"  # any other switch or network failure


class SkipReason(StrEnum):
    """Why a member was not tried at all (their presence said no)."""

    BUSY = "busy"  # ringing for or talking on another call, or in wrap-up
    OFFLINE = "offline"
    ON_BREAK = "break"
    NOT_REGISTERED = "not_registered"  # online in the console, phone not registered
    NO_EXTENSION = "no_extension"


class FailReason(StrEnum):
    """Why a whole transfer failed (Call.transfer["reason"])."""

    NO_MEMBERS = "no_members"  # the group has nobody to call
    ALL_BUSY = "all_busy"  # 人工全忙: no member was free to be offered the call
    NO_ANSWER = "no_answer"  # members were offered the call, none took it
    CUSTOMER_HUNG_UP = "customer_hung_up"
    BRIDGE_FAILED = "bridge_failed"  # the agent answered but the legs could not be joined
    SWITCH_ERROR = "switch_error"  # FreeSWITCH unreachable or refused the commands


class Fallback(StrEnum):
    """What the AI does when a transfer failed."""

    AI_CLOSING = "ai_closing"  # play the task's closing line (挂断语) and hang up
    AI_DIALOGUE = "ai_dialogue"  # 人工全忙转AI: the AI holds the conversation from the start


class Gate(StrEnum):
    """May the dialer place another call of a task that depends on agents?"""

    DIAL = "dial"
    HOLD = "hold"  # wait: predictive calls need a free agent each
    PAUSE = "pause"  # 转人工全忙暂停: pause the task


# FreeSWITCH hang-up causes (originate's `-ERR <CAUSE>`) → what the try means.
_CAUSES = {
    "NO_ANSWER": TryResult.NO_ANSWER,
    "NO_USER_RESPONSE": TryResult.NO_ANSWER,
    "ALLOTTED_TIMEOUT": TryResult.NO_ANSWER,
    "ORIGINATOR_CANCEL": TryResult.NO_ANSWER,
    "RECOVERY_ON_TIMER_EXPIRE": TryResult.NO_ANSWER,
    "PROGRESS_TIMEOUT": TryResult.NO_ANSWER,
    "USER_BUSY": TryResult.BUSY,
    "CALL_REJECTED": TryResult.REJECTED,
    "USER_NOT_REGISTERED": TryResult.NOT_REGISTERED,
    "SUBSCRIBER_ABSENT": TryResult.NOT_REGISTERED,
    "DESTINATION_OUT_OF_ORDER": TryResult.NOT_REGISTERED,
}


def classify_cause(cause: str) -> TryResult:
    """The try result for a FreeSWITCH hang-up cause (unknown causes are FAILED)."""
    return _CAUSES.get(cause.strip().upper(), TryResult.FAILED)


@dataclass(frozen=True)
class Member:
    """A group member as the runner needs it: who, and the extension to ring."""

    user_id: int
    extension: str | None
    position: int = 0
    name: str = ""


@dataclass(frozen=True)
class TransferGroupSpec:
    """A transfer group (转接组) read from the database, with nothing lazy left in it."""

    id: int
    name: str
    strategy: TransferStrategy
    ring_timeout_s: int = DEFAULT_RING_TIMEOUT_S
    members: tuple[Member, ...] = ()
    remote_dial: str | None = None  # e.g. sofia/gateway/gw1/95555 for the remote strategy
    music: str | None = None  # 转接背景音; None: DEFAULT_MUSIC
    account_id: int | None = None


@dataclass(frozen=True)
class AgentView:
    """What the order needs from an agent's presence (core.presence.Snapshot has these)."""

    state: str  # core.presence.AgentState value, wrap-up already expired to available
    registered: bool
    calls: int = 0  # calls taken (for the "least calls" order)
    idle_since: float = 0.0  # epoch seconds since the agent is free (longest idle first)


@dataclass(frozen=True)
class Target:
    """One try: an agent (user_id and extension) or the remote number."""

    dial: str  # the FreeSWITCH endpoint: user/1001 or sofia/gateway/gw1/95555
    user_id: int | None = None
    extension: str | None = None
    name: str = ""

    def describe(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


@dataclass(frozen=True)
class Plan:
    targets: tuple[Target, ...]
    skipped: tuple[dict, ...] = field(default=())  # [{"user_id", "extension", "reason"}]


def _skip_reason(member: Member, view: AgentView | None) -> SkipReason | None:
    if not member.extension:
        return SkipReason.NO_EXTENSION
    if view is None or view.state == "offline":
        return SkipReason.OFFLINE
    if view.state == "break":
        return SkipReason.ON_BREAK
    if view.state != "available":
        return SkipReason.BUSY
    if not view.registered:
        return SkipReason.NOT_REGISTERED
    return None


def order_members(strategy: TransferStrategy, members: Sequence[Member],
                  agents: Mapping[int, AgentView], rng: random.Random) -> list[Member]:
    """Members in the order they are tried.

    average: least calls first, then longest idle, then the group's order;
    order: the group's order (position, top-down); random: shuffled with `rng`.
    """
    by_position = sorted(members, key=lambda m: (m.position, m.user_id))
    if strategy == TransferStrategy.AVERAGE:
        def key(m: Member):
            view = agents.get(m.user_id)
            return (view.calls if view else 0, view.idle_since if view else 0.0,
                    m.position, m.user_id)
        return sorted(members, key=key)
    if strategy == TransferStrategy.RANDOM:
        rng.shuffle(by_position)
    return by_position


def plan(group: TransferGroupSpec, agents: Mapping[int, AgentView],
         rng: random.Random | None = None) -> Plan:
    """Who to try, in order, and who is skipped and why.

    Only members who are available with a registered phone are tried; the remote strategy
    tries its one external number. `agents` maps user ids to their presence.
    """
    if group.strategy == TransferStrategy.REMOTE:
        if not group.remote_dial:
            return Plan(())
        return Plan((Target(dial=group.remote_dial, name=group.name),))
    skipped = []
    eligible = []
    for member in group.members:
        reason = _skip_reason(member, agents.get(member.user_id))
        if reason is None:
            eligible.append(member)
        else:
            skipped.append({"user_id": member.user_id, "extension": member.extension,
                            "reason": str(reason)})
    ordered = order_members(group.strategy, eligible, agents, rng or random.Random())
    targets = tuple(Target(dial=f"user/{m.extension}", user_id=m.user_id,
                           extension=m.extension, name=m.name) for m in ordered)
    return Plan(targets, tuple(skipped))


def failure_reason(group: TransferGroupSpec, tries: Iterable[dict]) -> FailReason:
    """Why a transfer whose tries (maybe none) all failed failed."""
    tries = list(tries)
    if not tries:
        if group.strategy == TransferStrategy.REMOTE and not group.remote_dial:
            return FailReason.NO_MEMBERS
        if group.strategy != TransferStrategy.REMOTE and not group.members:
            return FailReason.NO_MEMBERS
        return FailReason.ALL_BUSY
    results = {t.get("result") for t in tries}
    if results <= {TryResult.BUSY, TryResult.NOT_REGISTERED}:
        return FailReason.ALL_BUSY  # nobody could even ring
    if results == {TryResult.FAILED}:
        return FailReason.SWITCH_ERROR
    return FailReason.NO_ANSWER


def fallback(trigger: Trigger, predictive_busy_to_ai: bool) -> Fallback:
    """What the AI does after a failed transfer.

    A transfer asked for during the dialogue goes back to the AI, which plays the closing
    line and hangs up (转接逻辑: 都不接，就回到 AI，播报挂断语). A predictive call never
    talked to the AI: with 人工全忙转AI the AI holds the whole conversation; without it the
    AI only says its closing line.
    """
    if trigger == Trigger.PREDICTIVE and predictive_busy_to_ai:
        return Fallback.AI_DIALOGUE
    return Fallback.AI_CLOSING


class TransferFailed(Exception):
    """Raised by the dialogue's `CallControl.transfer(target)` when the transfer found
    nobody; `fallback` says what the AI does now, `result` is the runner's TransferResult."""

    def __init__(self, result):
        super().__init__(f"transfer failed: {result.reason}")
        self.result = result
        self.fallback = result.fallback


def closing_line(dialogue_settings: Mapping | None) -> tuple[str, str | None]:
    """(text, audio) of the closing line (挂断语) after a failed transfer:
    Task.dialogue_settings["closing_prompt"] — {"text": …, "audio": <prompt file>} or just
    the text — else DEFAULT_CLOSING."""
    value = (dialogue_settings or {}).get("closing_prompt")
    if isinstance(value, Mapping):
        text, audio = str(value.get("text") or ""), value.get("audio") or None
        return (text or ("" if audio else DEFAULT_CLOSING)), audio
    return (str(value) if value else DEFAULT_CLOSING), None


def group_target(target: object) -> int | None:
    """The transfer group a script's transfer target names ("group:3", "3" or 3); None for
    anything else (the task's own group)."""
    text = str(target or "").strip().removeprefix("group:")
    return int(text) if text.isdigit() else None


def grade_trigger(dialogue_settings: Mapping | None, grade: str | None,
                  transfer_so_far: Mapping | None = None) -> bool:
    """The rule "grade reaches A during the call → transfer": True when the grade the
    dialogue has just reached is one of Task.dialogue_settings["transfer_on_grades"]
    (e.g. ["A"]) and this call has not been transferred (or tried) yet."""
    grades = (dialogue_settings or {}).get("transfer_on_grades") or ()
    return bool(grade) and grade in grades and not transfer_so_far


def pause_task(pause_when_agents_busy: bool, reason: FailReason | str | None) -> bool:
    """转人工全忙暂停: pause the task when a transfer found every agent busy."""
    return bool(pause_when_agents_busy) and reason == FailReason.ALL_BUSY


def dial_gate(*, predictive: bool, pause_when_agents_busy: bool, predictive_busy_to_ai: bool,
              free_agents: int, predictive_in_flight: int = 0) -> Gate:
    """May the dialer place one more call of this task?

    `free_agents`: the group's members who are available with a registered phone;
    `predictive_in_flight`: this task's calls already dialled in predictive mode and not
    yet handed to an agent. With 转人工全忙暂停 and no free agent the task pauses. A
    predictive task dials at most one call per free agent unless 人工全忙转AI lets the AI
    take the overflow.
    """
    if pause_when_agents_busy and free_agents <= 0:
        return Gate.PAUSE
    if predictive and not predictive_busy_to_ai and predictive_in_flight >= free_agents:
        return Gate.HOLD
    return Gate.DIAL


def mask_phone(phone: str, mode: str = "middle") -> str:
    """A phone number as agents see it: `middle` hides the middle four digits of numbers
    of 7+ digits (138****8000), `all` all but the last two, `none` nothing."""
    phone = phone or ""
    if mode == "none" or not phone:
        return phone
    if mode == "all":
        return "*" * max(0, len(phone) - 2) + phone[-2:]
    if len(phone) >= 7:
        start = (len(phone) - 4) // 2 if len(phone) < 11 else 3
        return phone[:start] + "****" + phone[start + 4:]
    return phone[:1] + "*" * (len(phone) - 1)


def record(state: TransferState, *, trigger: Trigger, group: TransferGroupSpec,
           target: Target | None, reason: FailReason | None, tries: Sequence[dict],
           skipped: Sequence[dict] = (), fallback_to: Fallback | None = None,
           paused: bool = False) -> dict:
    """The JSON kept in Call.transfer: {"state", "target", "reason", "tries", …}."""
    out = {"state": str(state), "trigger": str(trigger), "group_id": group.id,
           "group": group.name, "strategy": str(group.strategy),
           "target": target.describe() if target else None,
           "reason": str(reason) if reason else None, "tries": list(tries)}
    if skipped:
        out["skipped"] = list(skipped)
    if fallback_to:
        out["fallback"] = str(fallback_to)
    if paused:
        out["paused_task"] = True
    return out


def screen_pop(*, call_uuid: str, call_id: int | None, phone: str, mask: str,
               variables: Mapping | None = None, crm: Mapping | None = None,
               transcript: Sequence[Mapping] = (), grade: str | None = None,
               tags: Sequence[str] = (), task_name: str = "") -> dict:
    """The screen pop (弹屏) an agent sees while the call rings: the customer (number
    masked per `mask`), imported variables, CRM data, the transcript so far, grade, tags."""
    return {"call_uuid": call_uuid, "call_id": call_id, "phone": mask_phone(phone, mask),
            "task": task_name, "variables": dict(variables or {}),
            "crm": dict(crm) if crm else None,
            "transcript": [{"speaker": t.get("speaker"), "text": t.get("text", "")}
                           for t in transcript],
            "grade": grade, "tags": list(tags)}
