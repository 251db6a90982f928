"""What the demo account holds, as data (pure: no I/O): the script (话术), the SMS template and
post-call rule, the task's settings, and the simulated callees — who answers, what they
say, what the carrier plays — with the status and grade each one ends with.

`core.demo.build` turns this into database rows and simswitch's scenario; the end-to-end
test (tests/integration/test_demo.py) checks the outcome mix against `OUTCOMES`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

DEMO_NUMBERS = 300  # the demo task's size (a few minutes at its concurrency)
GATEWAY = "demo"  # the demo line's gateway: only simswitch's demo scenario has it
AGENT_EXTENSION = "8001"
ACCOUNT_NAME = "演示账户"
ADMIN_USERNAME = "demo"
AGENT_USERNAME = "demo-agent"
TASK_NAME = "演示任务"
SCRIPT_NAME = "宽带提速回访（演示）"
GROUP_NAME = "演示转接组"
LINE_NAME = "演示线路（simswitch）"

# Voices (espeak-ng): the robot speaks with the TTS voice of the settings (TTS_VOICE); the
# carrier's announcements, callees and the agent each have their own.
ANNOUNCER = "cmn+f2"
AGENT_VOICE = "cmn+m3"

# The robot's fixed lines, "recorded" at set-up (ScriptPrompt files in PROMPTS_DIR); the
# opening names the callee ({姓名}) and is spoken by TTS at call time.
RECORDED = {
    "offer": "我们有个宽带提速优惠，每月只加十元，网速翻倍，您有兴趣了解一下吗？",
    "human": "好的，现在为您转接人工客服，请稍等。",
    "later": "好的，我把活动详情用短信发给您，您有空看看，再见。",
    "busy": "不好意思打扰了，我稍后再联系您，再见。",
    "refused": "抱歉打扰您了，再见。",
    "bye": "好的，那就不打扰您了，祝您生活愉快，再见。",
    "screened": "好的，麻烦转告机主，我们稍后再联系，再见。",
    "price": "提速后每月只需要多交十元，第一个月免费。",
    "robot": "我是智能客服小云，您需要的话可以帮您转人工。",
}
OPENING = "您好，请问是{姓名}吗？我是云帆宽带的客服小云。"
NO_INPUT = "喂，您好，能听到我说话吗？"
NO_MATCH = "不好意思，我没有听清楚，您能再说一遍吗？"
CLOSING = "抱歉，客服暂时都在忙，稍后会有专员联系您，再见。"
NAMES = ("王先生", "李女士", "张先生", "刘女士", "陈先生", "杨女士", "赵先生", "黄女士",
         "周先生", "吴女士")


def script_body(prompt_files: dict[str, str], group_id: int) -> dict:
    """The script: `prompt_files` maps RECORDED keys to uploaded prompt file names."""

    def rec(key: str) -> dict:
        return {"text": RECORDED[key], "audio": prompt_files[key]}

    def bye(key: str, *actions: dict) -> dict:
        return {"prompt": rec(key), "interruptible": False,
                "actions": [*actions, {"type": "hangup"}]}

    return {
        "mode": "flow",
        "start": "opening",
        "nodes": {
            "opening": {"prompt": {"text": OPENING},
                        "branches": [{"intents": ["assistant"], "goto": "screened"},
                                     {"intents": ["busy"], "goto": "busy"},
                                     {"intents": ["refuse"], "goto": "refused"},
                                     {"intents": ["deny"], "goto": "bye"},
                                     {"intents": ["affirm"], "goto": "offer"}]},
            "offer": {"prompt": rec("offer"),
                      "branches": [{"intents": ["busy"], "goto": "busy"},
                                   {"intents": ["refuse", "deny"], "goto": "bye"},
                                   {"intents": ["maybe"], "goto": "later"},
                                   {"intents": ["affirm"], "goto": "human"}]},
            "human": {"prompt": rec("human"), "interruptible": False,
                      "actions": [{"type": "tag", "value": "有意向"},
                                  {"type": "score", "value": 10},
                                  {"type": "transfer", "target": f"group:{group_id}"}]},
            "later": bye("later", {"type": "tag", "value": "考虑中"},
                         {"type": "score", "value": 5}),
            "busy": bye("busy"),
            "refused": bye("refused", {"type": "score", "value": -10}),
            "bye": bye("bye"),
            "screened": bye("screened", {"type": "tag", "value": "智能助理"}),
        },
        "intents": [
            {"name": "price", "keywords": ["多少钱", "价格", "收费", "贵不贵"],
             "synonyms": ["费用"]},
            {"name": "maybe", "keywords": ["考虑一下", "考虑考虑", "想一想", "想想", "回头看看"],
             "priority": 1},
        ],
        "knowledge": [
            {"name": "价格", "intents": ["price"], "answer": rec("price"), "then": "repeat"},
            {"name": "是不是机器人", "intents": ["robot"], "answer": rec("robot"),
             "then": "repeat"},
        ],
        "no_input": {"prompt": {"text": NO_INPUT}, "max": 1, "goto": "bye"},
        "no_match": {"prompt": {"text": NO_MATCH}, "max": 1, "goto": "bye"},
        "grading": [{"grade": "A", "when": {"tags_any": ["有意向"]}},
                    {"grade": "B", "when": {"tags_any": ["考虑中"]}}],
    }


SMS_TEMPLATE = {"name": "意向客户回访短信", "signature": "云帆宽带",
                "body": "{姓名}您好，感谢接听云帆宽带的来电。宽带提速每月只加十元，首月免费，"
                        "回复1即可办理。回复TD退订"}
SMS_RULE = {"name": "A/B 类客户发送挂机短信",
            "conditions": {"match": "all", "items": [
                {"field": "grade", "op": "in", "value": ["A", "B"]}]}}
WEEKLY_ALL_DAY = {day: [["00:00", "24:00"]]
                  for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
LINE = {"max_concurrency": 40, "caller_ids": ["02160001234"]}
TASK = {"max_concurrency": 30, "call_interval_s": 0, "ring_timeout_s": 25, "max_call_s": 300,
        "weekly": WEEKLY_ALL_DAY, "skip_holidays": False, "tags": ["演示"],
        "dialogue_settings": {"closing_prompt": CLOSING}}


@dataclass(frozen=True)
class Say:
    """One callee utterance: the words (espeak-ng speaks them at set-up) and when."""

    text: str
    trigger: str = "after_prompt"  # a simswitch callee trigger (simswitch/README.md)
    value: float = 1
    delay: float = 0.4


@dataclass(frozen=True)
class Outcome:
    """One kind of simulated callee, how many of the demo's numbers get it (weight), and what
    the console ends up showing for it (status, grade, transfer)."""

    name: str
    label: str  # what it is, for people reading the scenario
    weight: int
    sim: dict  # simswitch outcome fields other than the callee's steps
    says: tuple[Say, ...] = ()
    voice: str = "cmn+f3"
    noise: bool = False  # background voices mixed under the callee's speech
    status: str = "answered"
    grade: str | None = None
    transfers: bool = False
    hangup_after_s: float | None = None  # the callee hangs up this long after answering
    announcement: str | None = None  # the carrier's early-media recording (text) …
    announcement_en: str = ""  # … and its English half, as Chinese carriers play them
    tags: tuple[str, ...] = field(default=())


# The mix of the demo task. Statuses are what the controller makes of each (controller/
# README.md, "Call status mapping"): the carrier's recordings are recognised by the
# announcement detector simswitch plays (CPA_DETECTOR), so a 关机 recording followed by a
# bare 480 reads as 关机, and the call is hung up once it is recognised; an assistant that
# answers reads as 用户屏蔽.
OUTCOMES: tuple[Outcome, ...] = (
    Outcome("interested", "接听，有兴趣，转人工", 10, {"result": "answer", "after": 4},
            (Say("是我，你说吧", value=1), Say("可以，我有兴趣", value=2)),
            grade="A", transfers=True, hangup_after_s=50),
    Outcome("price_then_later", "接听，问价格（知识库），考虑一下", 8, {"result": "answer", "after": 5},
            (Say("嗯，是我", value=1), Say("这个多少钱？", value=2),
             Say("我再考虑考虑吧", value=4)), voice="cmn+m2", grade="B"),
    Outcome("robot_question", "接听，问是不是机器人（知识库），不需要", 6,
            {"result": "answer", "after": 3},
            (Say("你是机器人吗？", value=1), Say("对，是我", value=3),
             Say("不需要，谢谢", value=4)), voice="cmn+f4", grade="C"),
    Outcome("barge_in_refusal", "接听，打断机器人说不需要", 8, {"result": "answer", "after": 4},
            (Say("对，是我", value=1), Say("不用了不用了，我不需要", "barge_in", 2.0, 0)),
            voice="cmn+m1", grade="C"),
    Outcome("busy_in_meeting", "接听，在开会", 6, {"result": "answer", "after": 6},
            (Say("我在开会，晚点再说", value=1),), voice="cmn+m4", grade="D"),
    Outcome("noisy_street", "接听，背景嘈杂，考虑一下", 6,
            {"result": "answer", "after": 4, "noise_dbfs": -42},
            (Say("喂？是我，你说", value=1), Say("我想想吧", value=2)),
            voice="cmn+f5", noise=True, grade="B"),
    Outcome("assistant", "智能助理代接", 5, {"result": "answer", "after": 8},
            (Say("您好，我是机主的智能助理，请问您有什么事？", value=1, delay=0.2),), voice="cmn+f1", grade="F",
            status="screened"),
    Outcome("silent", "接听后不说话", 3, {"result": "answer", "after": 5, "noise_dbfs": -55},
            grade="E"),
    Outcome("busy", "用户正忙（486）", 12, {"result": "busy", "after": 3}, status="busy"),
    Outcome("no_answer", "无人接听（振铃到超时）", 13, {"result": "no_answer"},
            status="no_answer"),
    Outcome("vacant", "空号（运营商录音 + 404）", 10,
            {"result": "vacant", "after": 6, "category": "空号"}, status="vacant",
            announcement="对不起，您拨打的号码是空号，请查证后再拨。",
            announcement_en="Sorry, the number you dialed does not exist."),
    Outcome("powered_off", "关机（运营商录音 + 480）", 13,
            {"result": "sip", "sip": 480, "reason_q850": 20, "after": 9, "category": "关机"},
            status="powered_off",
            announcement="对不起，您拨打的电话已关机，请稍后再拨。",
            announcement_en="Sorry, the subscriber you dialed is power off."),
)
BY_NAME = {o.name: o for o in OUTCOMES}
AGENT_SAYS = ("您好，我是云帆宽带的客服小王，很高兴为您服务。",
              "提速办理好之后，明天就能生效，我这边帮您登记一下。")
CALLEE_TO_AGENT = "好的，谢谢你。"  # the interested callee, once bridged to the agent

MOBILE_PREFIXES = ("138", "139", "135", "136", "150", "158", "186", "185", "131", "155",
                   "133", "189", "177", "153", "180")


def counts(n: int) -> dict[str, int]:
    """How many of `n` numbers get each outcome (largest remainder; every outcome at least
    once when n allows)."""
    total = sum(o.weight for o in OUTCOMES)
    exact = {o.name: n * o.weight / total for o in OUTCOMES}
    out = {k: int(v) for k, v in exact.items()}
    if n >= len(OUTCOMES):
        for k in out:
            out[k] = max(out[k], 1)
    while sum(out.values()) > n:
        k = max(out, key=lambda k: (out[k] - exact[k], out[k]))
        out[k] -= 1
    for k in sorted(exact, key=lambda k: exact[k] - out[k], reverse=True):
        if sum(out.values()) >= n:
            break
        out[k] += 1
    return out


@dataclass(frozen=True)
class DemoNumber:
    phone: str
    outcome: str
    name: str  # the 姓名 variable


def numbers(n: int = DEMO_NUMBERS, seed: int = 11) -> list[DemoNumber]:
    """The demo task's numbers in dialling order: outcomes interleaved (so the first minute
    already shows a mix), phones and names stable for a given `n` and `seed`."""
    rng = random.Random(seed)
    pool = [name for name, k in counts(n).items() for _ in range(k)]
    rng.shuffle(pool)
    phones: set[str] = set()
    out = []
    for i, outcome in enumerate(pool):
        while True:
            phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10 ** 8):08d}"
            if phone not in phones:
                break
        phones.add(phone)
        out.append(DemoNumber(phone, outcome, NAMES[i % len(NAMES)]))
    return out
