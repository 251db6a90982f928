"""Grades A–F at hang-up (FEATURES.md C6) from rules over what happened in the call.

Pure: `grade(facts, rules)` → (Grade, reasons). The script's own rules (schema `grading`)
are tried in order, then the defaults below; the first rule whose conditions all hold wins.
A call-screening assistant (智能助理) always gives F, whatever the rules say.

Conditions (all must hold): intents_any / intents_all, tags_any, nodes_any, score_gte /
score_lte, turns_gte / turns_lte (callee utterances), duration_gte / duration_lte (seconds
talked), unrecognised_gte, hangup_side (callee | robot | …), no_speech (true/false).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.dialogue.schema import GradeRule
from core.enums import Grade


@dataclass(frozen=True)
class CallFacts:
    intents: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    score: int = 0
    turns: int = 0
    duration_s: float = 0.0
    unrecognised: int = 0
    hangup_side: str | None = None
    assistant: bool = False
    extra: dict = field(default_factory=dict)


DEFAULT_RULES: tuple[GradeRule, ...] = (
    GradeRule("D", {"intents_any": ["busy"], "intents_none_after": ["affirm"]}),
    GradeRule("A", {"tags_any": ["有意向", "A"]}),
    GradeRule("A", {"intents_any": ["affirm"], "score_gte": 10}),
    GradeRule("C", {"intents_any": ["refuse"]}),
    GradeRule("C", {"intents_last": ["deny"]}),
    GradeRule("B", {"intents_any": ["affirm"], "turns_gte": 2}),
    GradeRule("B", {"turns_gte": 3, "duration_gte": 30}),
    GradeRule("C", {"turns_gte": 1}),
    GradeRule("E", {}),
)


def _holds(key: str, want, f: CallFacts) -> tuple[bool, str]:
    """Whether one condition holds, and how to say it in the reasons."""
    if key == "intents_any":
        hit = [i for i in want if i in f.intents]
        return bool(hit), f"intent {'/'.join(hit or want)}"
    if key == "intents_all":
        return all(i in f.intents for i in want), f"intents {'+'.join(want)}"
    if key == "intents_none_after":
        # e.g. busy, unless the callee agreed after saying so
        last_busy = max((n for n, i in enumerate(f.intents) if i == "busy"), default=-1)
        later = f.intents[last_busy + 1:]
        return not any(i in later for i in want), f"no {'/'.join(want)} after"
    if key == "intents_last":
        return bool(f.intents) and f.intents[-1] in want, f"last intent {f.intents[-1:]}"
    if key == "tags_any":
        hit = [t for t in want if t in f.tags]
        return bool(hit), f"tag {'/'.join(hit or want)}"
    if key == "nodes_any":
        hit = [n for n in want if n in f.nodes]
        return bool(hit), f"reached {'/'.join(hit or want)}"
    numeric = {"score": f.score, "turns": f.turns, "duration": f.duration_s,
               "unrecognised": f.unrecognised}
    base, _, op = key.rpartition("_")
    if base in numeric and op in ("gte", "lte"):
        value = numeric[base]
        ok = value >= want if op == "gte" else value <= want
        return ok, f"{base} {value:g} {'≥' if op == 'gte' else '≤'} {want}"
    if key == "hangup_side":
        return f.hangup_side == want, f"hung up by {f.hangup_side}"
    if key == "no_speech":
        return (f.turns == 0) == bool(want), "no speech" if want else "spoke"
    return False, f"unknown condition {key}"


def grade(facts: CallFacts, rules=()) -> tuple[Grade, list[str]]:
    """The grade and the reasons (which rule, which facts) for a finished call."""
    if facts.assistant or "assistant" in facts.intents:
        return Grade.F, ["call-screening assistant answered"]
    for source, rule_list in (("script rule", rules), ("default rule", DEFAULT_RULES)):
        for n, rule in enumerate(rule_list, 1):
            results = [_holds(k, v, facts) for k, v in rule.when.items()]
            if all(ok for ok, _ in results):
                reasons = [f"{source} {n}"] + [why for _, why in results]
                return Grade(rule.grade), reasons
    return Grade.E, ["no rule matched"]
