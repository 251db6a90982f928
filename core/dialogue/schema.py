"""The script (话术) body: a flow graph of nodes with prompts, intent branches and actions,
script intents, global knowledge Q&A, no-input / no-match re-prompts, grading rules and the
LLM-mode settings. Stored as JSON in `ScriptVersion.body`; `validate()` lists what is wrong,
`parse()` turns a valid body into frozen dataclasses the interpreter runs.

Body (every key but `nodes` and `start` is optional):

    {"mode": "flow" | "llm",
     "start": "opening",
     "nodes": {"opening": {
         "prompt": {"text": "您好，请问是{姓名}吗？", "audio": "intro.wav"},
         "interruptible": true,
         "branches": [{"intents": ["affirm"], "goto": "offer"},
                      {"intents": ["deny", "refuse"], "goto": "bye"}],
         "next": null,              # go on without listening (a chain of prompts)
         "default": null,           # where any unmatched speech goes (instead of no-match)
         "actions": [{"type": "tag", "value": "有意向"}, {"type": "score", "value": 10},
                     {"type": "hangup"} | {"type": "transfer", "target": "group:1"}
                     | {"type": "sms", "template_id": 3}],
         "no_input": {...}, "no_match": {...}}},   # per-node overrides of the globals below
     "intents": [{"name": "price", "keywords": ["多少钱"], "synonyms": ["价格"],
                  "regexes": ["贵不贵"], "priority": 0}],
     "knowledge": [{"name": "价格", "intents": ["price"], "keywords": [],
                    "answer": {"text": "…"}, "then": "repeat" | "listen" | "<node>"}],
     "no_input": {"prompt": {"text": "喂，您能听到吗？"}, "max": 2, "goto": "bye"},
     "no_match": {"prompt": {"text": "不好意思没听清…"}, "max": 2, "goto": "bye"},
     "grading": [{"grade": "A", "when": {"intents_any": ["affirm"], "score_gte": 10}}],
     "llm": {"system_prompt": "…", "opening": "…", "max_tokens": 200, "timeout_s": 8}}
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.dialogue.intents import BUILTIN, BUILTIN_NAMES, Intent

NODE_ACTIONS = ("tag", "score", "hangup", "transfer", "sms")
KNOWLEDGE_THEN = ("repeat", "listen")
GRADES = ("A", "B", "C", "D", "E", "F")
CONDITIONS = ("intents_any", "intents_all", "tags_any", "score_gte", "score_lte", "turns_gte",
              "turns_lte", "duration_gte", "duration_lte", "nodes_any", "unrecognised_gte",
              "hangup_side", "no_speech", "intents_last", "intents_none_after")
_VAR = re.compile(r"\{([^{}]+)\}")


class ScriptError(ValueError):
    """A script body that cannot run; `errors` lists every problem found."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Prompt:
    text: str = ""
    audio: str | None = None  # a prompt file name (uploaded) or an absolute path

    def variables(self) -> list[str]:
        return _VAR.findall(self.text)

    def render(self, variables: dict) -> str:
        """The text with {name} replaced from `variables` (missing ones become empty)."""
        return _VAR.sub(lambda m: str(variables.get(m.group(1).strip(), "")), self.text)


@dataclass(frozen=True)
class Retry:
    prompt: Prompt
    max: int
    goto: str | None  # None: hang up


@dataclass(frozen=True)
class Branch:
    intents: tuple[str, ...]
    goto: str


@dataclass(frozen=True)
class Action:
    type: str
    value: object = None


@dataclass(frozen=True)
class Node:
    name: str
    prompt: Prompt
    interruptible: bool
    branches: tuple[Branch, ...]
    next: str | None
    default: str | None
    actions: tuple[Action, ...]
    no_input: Retry | None
    no_match: Retry | None

    @property
    def terminal(self) -> Action | None:
        """The hangup/transfer action that ends the call after this node's prompt."""
        for action in self.actions:
            if action.type in ("hangup", "transfer"):
                return action
        return None


@dataclass(frozen=True)
class Knowledge:
    name: str
    intent: Intent
    answer: Prompt
    then: str  # repeat | listen | a node name


@dataclass(frozen=True)
class GradeRule:
    grade: str
    when: dict


@dataclass(frozen=True)
class LlmConf:
    system_prompt: str = ""
    opening: str = ""
    max_tokens: int = 200
    timeout_s: float = 8.0
    max_turns: int = 12


@dataclass(frozen=True)
class Flow:
    mode: str
    start: str
    nodes: dict[str, Node]
    intents: dict[str, Intent]  # the script's own plus the built-ins
    knowledge: tuple[Knowledge, ...]
    no_input: Retry
    no_match: Retry
    grading: tuple[GradeRule, ...]
    llm: LlmConf

    def variables(self) -> set[str]:
        names = set()
        for node in self.nodes.values():
            names.update(node.prompt.variables())
        return names


DEFAULT_NO_INPUT = {"prompt": {"text": "喂，您好，能听到我说话吗？"}, "max": 2, "goto": None}
DEFAULT_NO_MATCH = {"prompt": {"text": "不好意思，我没有听清楚，您能再说一遍吗？"}, "max": 2,
                    "goto": None}


def _prompt(raw, where: str, errors: list[str]) -> Prompt:
    if raw is None:
        return Prompt()
    if isinstance(raw, str):
        return Prompt(text=raw)
    if not isinstance(raw, dict):
        errors.append(f"{where}: prompt must be an object with text and/or audio")
        return Prompt()
    text, audio = raw.get("text") or "", raw.get("audio") or None
    if not isinstance(text, str) or (audio is not None and not isinstance(audio, str)):
        errors.append(f"{where}: prompt text and audio must be strings")
        return Prompt()
    return Prompt(text=text, audio=audio)


def _retry(raw, fallback: dict, where: str, errors: list[str]) -> Retry:
    raw = {**fallback, **(raw or {})}
    count = raw.get("max", 2)
    if not isinstance(count, int) or count < 0 or count > 10:
        errors.append(f"{where}: max must be a whole number 0-10")
        count = 0
    return Retry(_prompt(raw.get("prompt"), where, errors), count, raw.get("goto") or None)


def _intent(raw, where: str, errors: list[str]) -> Intent | None:
    if not isinstance(raw, dict) or not raw.get("name"):
        errors.append(f"{where}: an intent needs a name")
        return None
    try:
        return Intent.build(str(raw["name"]), raw.get("keywords") or (),
                            raw.get("synonyms") or (), raw.get("regexes") or (),
                            int(raw.get("priority") or 0))
    except re.error as exc:
        errors.append(f"{where}: bad regular expression: {exc}")
    except (TypeError, ValueError):
        errors.append(f"{where}: keywords, synonyms and regexes must be lists of text")
    return None


def _node(name: str, raw, errors: list[str]) -> Node:
    where = f"node {name}"
    if not isinstance(raw, dict):
        errors.append(f"{where}: must be an object")
        raw = {}
    branches = []
    for i, b in enumerate(raw.get("branches") or ()):
        intents = b.get("intents") if isinstance(b, dict) else None
        if isinstance(b, dict) and isinstance(b.get("intent"), str):
            intents = [b["intent"]]
        if not intents or not isinstance(b.get("goto"), str):
            errors.append(f"{where}: branch {i + 1} needs intents and a goto")
            continue
        branches.append(Branch(tuple(intents), b["goto"]))
    actions = []
    for i, a in enumerate(raw.get("actions") or ()):
        kind = a.get("type") if isinstance(a, dict) else None
        if kind not in NODE_ACTIONS:
            errors.append(f"{where}: action {i + 1} has unknown type {kind!r}")
            continue
        value = a.get("value", a.get("target", a.get("template_id")))
        if kind == "score" and not isinstance(value, int):
            errors.append(f"{where}: a score action needs a whole number value (±N)")
            continue
        if kind == "tag" and not (isinstance(value, str) and value):
            errors.append(f"{where}: a tag action needs a tag")
            continue
        actions.append(Action(kind, value))
    return Node(
        name=name,
        prompt=_prompt(raw.get("prompt"), where, errors),
        interruptible=bool(raw.get("interruptible", True)),
        branches=tuple(branches),
        next=raw.get("next") or None,
        default=raw.get("default") or None,
        actions=tuple(actions),
        no_input=_retry(raw["no_input"], {}, where + " no_input", errors)
        if raw.get("no_input") else None,
        no_match=_retry(raw["no_match"], {}, where + " no_match", errors)
        if raw.get("no_match") else None,
    )


def _parse(body) -> tuple[Flow | None, list[str]]:
    errors: list[str] = []
    if not isinstance(body, dict):
        return None, ["the script must be a JSON object"]
    mode = body.get("mode", "flow")
    if mode not in ("flow", "llm"):
        errors.append(f"mode must be flow or llm, got {mode!r}")
    raw_nodes = body.get("nodes") or {}
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        errors.append("the script needs at least one node")
        raw_nodes = {}
    nodes = {str(k): _node(str(k), v, errors) for k, v in raw_nodes.items()}
    start = body.get("start") or (next(iter(nodes)) if nodes else "")
    if nodes and start not in nodes:
        errors.append(f"start node {start!r} does not exist")

    intents = dict(BUILTIN)
    for i, raw in enumerate(body.get("intents") or ()):
        intent = _intent(raw, f"intent {i + 1}", errors)
        if intent is not None:
            intents[intent.name] = intent

    knowledge = []
    for i, raw in enumerate(body.get("knowledge") or ()):
        where = f"knowledge {i + 1}"
        if not isinstance(raw, dict):
            errors.append(f"{where}: must be an object")
            continue
        name = str(raw.get("name") or f"q{i + 1}")
        refs = list(raw.get("intents") or ())
        for ref in refs:
            if ref not in intents:
                errors.append(f"{where}: unknown intent {ref!r}")
        words, regexes = [], []
        for ref in refs:
            if ref in intents:
                words.extend(intents[ref].keywords)
                regexes.extend(intents[ref].regexes)
        own = _intent({"name": name, "keywords": [*(raw.get("keywords") or ()), *words],
                       "regexes": [*(raw.get("regexes") or ()), *regexes],
                       "priority": raw.get("priority") or 0}, where, errors)
        then = raw.get("then") or "repeat"
        if then not in KNOWLEDGE_THEN and then not in nodes:
            errors.append(f"{where}: then must be repeat, listen or a node name")
        answer = _prompt(raw.get("answer"), where, errors)
        if not (answer.text or answer.audio):
            errors.append(f"{where}: needs an answer")
        if own is not None and not (own.keywords or own.regexes):
            errors.append(f"{where}: needs keywords, regexes or intents")
        if own is not None:
            knowledge.append(Knowledge(name, own, answer, then))

    for node in nodes.values():
        for b in node.branches:
            if b.goto not in nodes:
                errors.append(f"node {node.name}: branch goes to missing node {b.goto!r}")
            for ref in b.intents:
                if ref != "*" and ref not in intents:
                    errors.append(f"node {node.name}: unknown intent {ref!r}")
        for target in (node.next, node.default):
            if target and target not in nodes:
                errors.append(f"node {node.name}: goes to missing node {target!r}")
        for retry in (node.no_input, node.no_match):
            if retry and retry.goto and retry.goto not in nodes:
                errors.append(f"node {node.name}: retry goes to missing node {retry.goto!r}")
        if not (node.prompt.text or node.prompt.audio) and not node.terminal and not node.next:
            errors.append(f"node {node.name}: needs a prompt")

    no_input = _retry(body.get("no_input"), DEFAULT_NO_INPUT, "no_input", errors)
    no_match = _retry(body.get("no_match"), DEFAULT_NO_MATCH, "no_match", errors)
    for where, retry in (("no_input", no_input), ("no_match", no_match)):
        if retry.goto and retry.goto not in nodes:
            errors.append(f"{where}: goes to missing node {retry.goto!r}")

    grading = []
    for i, raw in enumerate(body.get("grading") or ()):
        where = f"grading rule {i + 1}"
        if not isinstance(raw, dict) or raw.get("grade") not in GRADES:
            errors.append(f"{where}: grade must be one of {', '.join(GRADES)}")
            continue
        when = raw.get("when") or {}
        unknown = [k for k in when if k not in CONDITIONS]
        if unknown:
            errors.append(f"{where}: unknown conditions {', '.join(unknown)}")
            continue
        grading.append(GradeRule(raw["grade"], dict(when)))

    raw_llm = body.get("llm") or {}
    try:
        llm = LlmConf(str(raw_llm.get("system_prompt") or ""), str(raw_llm.get("opening") or ""),
                      int(raw_llm.get("max_tokens") or 200), float(raw_llm.get("timeout_s") or 8),
                      int(raw_llm.get("max_turns") or 12))
    except (TypeError, ValueError):
        errors.append("llm: max_tokens, timeout_s and max_turns must be numbers")
        llm = LlmConf()
    if mode == "llm" and not llm.system_prompt:
        errors.append("llm: LLM mode needs a system prompt")
    if errors:
        return None, errors
    return Flow(mode, start, nodes, intents, tuple(knowledge), no_input, no_match,
                tuple(grading), llm), []


def validate(body) -> list[str]:
    """Every problem in `body` as a readable line; empty when the script can run."""
    return _parse(body)[1]


def parse(body) -> Flow:
    """A runnable `Flow`; raises ScriptError listing every problem."""
    flow, errors = _parse(body)
    if errors:
        raise ScriptError(errors)
    return flow


def builtin_intent_names() -> tuple[str, ...]:
    return BUILTIN_NAMES


EXAMPLE = {
    "mode": "flow",
    "start": "opening",
    "nodes": {
        "opening": {"prompt": {"text": "您好，请问是{姓名}吗？我是云帆科技的小云。"},
                    "branches": [{"intents": ["busy"], "goto": "busy"},
                                 {"intents": ["refuse"], "goto": "refused"},
                                 {"intents": ["deny"], "goto": "bye"},
                                 {"intents": ["affirm"], "goto": "offer"}]},
        "offer": {"prompt": {"text": "我们最近有一个宽带提速的优惠活动，您有兴趣了解一下吗？"},
                  "branches": [{"intents": ["busy"], "goto": "busy"},
                               {"intents": ["refuse", "deny"], "goto": "bye"},
                               {"intents": ["affirm"], "goto": "interested"}]},
        "interested": {"prompt": {"text": "好的，稍后会有专员联系您，感谢您的接听，再见。"},
                       "interruptible": False,
                       "actions": [{"type": "tag", "value": "有意向"},
                                   {"type": "score", "value": 10}, {"type": "hangup"}]},
        "busy": {"prompt": {"text": "不好意思打扰了，我稍后再联系您，再见。"},
                 "interruptible": False, "actions": [{"type": "hangup"}]},
        "refused": {"prompt": {"text": "抱歉打扰您了，再见。"}, "interruptible": False,
                    "actions": [{"type": "score", "value": -10}, {"type": "hangup"}]},
        "bye": {"prompt": {"text": "好的，那就不打扰您了，祝您生活愉快，再见。"},
                "interruptible": False, "actions": [{"type": "hangup"}]},
    },
    "intents": [{"name": "price", "keywords": ["多少钱", "价格", "收费"], "synonyms": ["费用"]}],
    "knowledge": [{"name": "价格", "intents": ["price"],
                   "answer": {"text": "提速后每月只需要多交十元。"}, "then": "repeat"},
                  {"name": "机器人", "intents": ["robot"],
                   "answer": {"text": "我是智能客服小云，有问题也可以帮您转人工。"},
                   "then": "repeat"}],
    "no_input": {"prompt": {"text": "喂，您好，能听到我说话吗？"}, "max": 1, "goto": "bye"},
    "no_match": {"prompt": {"text": "不好意思，我没有听清楚，您能再说一遍吗？"}, "max": 2,
                 "goto": "bye"},
    "grading": [],
    "llm": {"system_prompt": "你是云帆科技的电话客服小云，向客户介绍宽带提速优惠，回答简短。",
            "opening": "您好，请问是{姓名}吗？我是云帆科技的小云。"},
}
