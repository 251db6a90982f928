"""Scenario files: who answers, what the carrier plays, what the callee says (pure, no I/O
beyond reading the file).

A scenario is a JSON document (format documented in simswitch/README.md). ``load()``
validates it and returns a ``Scenario``; ``Scenario.outcome_for(number)`` picks the
``Outcome`` for a dialled number: an exact entry in ``numbers``, else a weighted draw from
``distribution`` that is stable per number (same seed + same number → same outcome).
"""

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = ("answer", "busy", "no_answer", "vacant", "rejected", "sip")
# SIP final responses behind the named failure results (PROTOCOL.md §7.1).
RESULT_SIP = {"busy": 486, "vacant": 404, "rejected": 603}
TRIGGERS = ("at", "after_prompt", "after_silence", "barge_in")
DEFAULT_SCENARIO = Path(__file__).with_name("default_scenario.json")


class ScenarioError(ValueError):
    """The scenario file is not valid; the message names the offending entry."""


@dataclass(frozen=True)
class Audio:
    """Audio a party produces: a real file, or (no file) a synthetic voiced signal of
    ``seconds`` standing in for speech. ``text`` is what the audio says."""

    path: str | None = None
    text: str = ""
    seconds: float = 1.0


@dataclass(frozen=True)
class Step:
    """One thing the callee does after answering, and when (see README: Callee script)."""

    action: str  # say | dtmf | hangup
    trigger: str  # at | after_prompt | after_silence | barge_in | next_prompt
    value: float = 0.0
    delay: float = 0.0
    audio: Audio | None = None
    digits: str = ""
    cause: str = "NORMAL_CLEARING"


@dataclass(frozen=True)
class Outcome:
    """How the far end treats one call."""

    name: str
    result: str = "answer"
    ring_after: float = 0.2  # seconds until 180 Ringing
    answer_after: float = 3.0  # seconds from the INVITE to 200 / the final failure
    sip_code: int = 200
    reason_q850: int | None = None
    early_media: Audio | None = None  # 183 + audio (carrier announcement or colour ring-back)
    early_media_loops: bool = True
    category: str = ""  # e.g. 关机 / 空号 / 停机 / 欠费, reported in variable simswitch_category
    steps: tuple = ()
    noise_dbfs: float | None = None
    hangup_after: float | None = None  # callee hangs up this long after answer


@dataclass(frozen=True)
class Agent:
    """A ``user/<ext>`` target."""

    extension: str
    registered: bool = True
    answers: bool = True
    answer_after: float = 1.0
    steps: tuple = ()


@dataclass
class Scenario:
    outcomes: dict
    numbers: dict
    distribution: list
    agents: dict
    gateways: dict
    seed: int = 0
    base_dir: Path = field(default_factory=Path.cwd)

    def outcome_for(self, number: str) -> Outcome:
        """The outcome for ``number``: its own entry, else a draw stable per number."""
        if number in self.numbers:
            return self.outcomes[self.numbers[number]]
        rng = random.Random(f"{self.seed}|{number}")
        total = sum(w for w, _ in self.distribution)
        pick = rng.uniform(0, total)
        for weight, name in self.distribution:
            pick -= weight
            if pick <= 0:
                return self.outcomes[name]
        return self.outcomes[self.distribution[-1][1]]


def _number(obj: dict, key: str, where: str, default=None, minimum: float = 0.0):
    value = obj.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or value < minimum:
        raise ScenarioError(f"{where}: '{key}' must be a number >= {minimum}, got {value!r}")
    return float(value)


def _audio(obj, where: str, base: Path) -> Audio | None:
    if obj is None:
        return None
    if isinstance(obj, str):
        obj = {"file": obj}
    if not isinstance(obj, dict):
        raise ScenarioError(f"{where}: audio must be a file name or an object")
    path = obj.get("file")
    if path is not None:
        resolved = (base / path) if not Path(path).is_absolute() else Path(path)
        if not resolved.is_file():
            raise ScenarioError(f"{where}: audio file not found: {resolved}")
        path = str(resolved)
    return Audio(path=path, text=str(obj.get("text", "")), seconds=_number(obj, "seconds", where, 1.0))


def _steps(items, where: str, base: Path) -> tuple:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ScenarioError(f"{where}: 'callee' must be a list of steps")
    steps = []
    for i, item in enumerate(items):
        here = f"{where}.callee[{i}]"
        if not isinstance(item, dict):
            raise ScenarioError(f"{here}: a step must be an object")
        actions = [a for a in ("say", "dtmf", "hangup") if a in item]
        if len(actions) != 1:
            raise ScenarioError(f"{here}: a step needs exactly one of say / dtmf / hangup")
        triggers = [t for t in TRIGGERS if t in item]
        if len(triggers) > 1:
            raise ScenarioError(f"{here}: at most one of {', '.join(TRIGGERS)}")
        trigger = triggers[0] if triggers else "next_prompt"
        value = _number(item, trigger, here, 0.0) if triggers else 0.0
        action = actions[0]
        audio = None
        if action == "say":
            audio = _audio(item["say"], here, base)
            if "text" in item:
                audio = Audio(audio.path, str(item["text"]), audio.seconds)
        steps.append(
            Step(
                action=action,
                trigger=trigger,
                value=value,
                delay=_number(item, "delay", here, 0.0),
                audio=audio,
                digits=str(item.get("dtmf", "")),
                cause=str(item["hangup"]) if isinstance(item.get("hangup"), str) else "NORMAL_CLEARING",
            )
        )
    return tuple(steps)


def _outcome(name: str, obj: dict, base: Path) -> Outcome:
    where = f"outcomes.{name}"
    if not isinstance(obj, dict):
        raise ScenarioError(f"{where}: must be an object")
    result = obj.get("result", "answer")
    if result not in RESULTS:
        raise ScenarioError(f"{where}: result must be one of {RESULTS}, got {result!r}")
    sip_code = obj.get("sip", RESULT_SIP.get(result, 200 if result == "answer" else 480))
    if result == "sip" and "sip" not in obj:
        raise ScenarioError(f"{where}: result 'sip' needs a 'sip' response code")
    if not isinstance(sip_code, int) or not 200 <= sip_code <= 699:
        raise ScenarioError(f"{where}: 'sip' must be a SIP response code, got {sip_code!r}")
    reason = obj.get("reason_q850")
    if reason is not None and not isinstance(reason, int):
        raise ScenarioError(f"{where}: 'reason_q850' must be an integer cause")
    default_answer = 3.0 if result == "answer" else 2.0
    return Outcome(
        name=name,
        result=result,
        ring_after=_number(obj, "ring_after", where, 0.2),
        answer_after=_number(obj, "after", where, default_answer),
        sip_code=sip_code,
        reason_q850=reason,
        early_media=_audio(obj.get("early_media"), f"{where}.early_media", base),
        early_media_loops=bool(obj.get("early_media_loops", True)),
        category=str(obj.get("category", "")),
        steps=_steps(obj.get("callee"), where, base),
        noise_dbfs=_number(obj, "noise_dbfs", where, None, minimum=-120.0) if "noise_dbfs" in obj else None,
        hangup_after=_number(obj, "hangup_after", where, None),
    )


def parse(doc: dict, base_dir: Path) -> Scenario:
    """Validate a scenario document; raise ``ScenarioError`` naming the first problem."""
    if not isinstance(doc, dict):
        raise ScenarioError("scenario must be a JSON object")
    raw_outcomes = doc.get("outcomes") or {}
    if not raw_outcomes:
        raise ScenarioError("scenario needs at least one entry in 'outcomes'")
    outcomes = {name: _outcome(name, obj, base_dir) for name, obj in raw_outcomes.items()}
    numbers = dict(doc.get("numbers") or {})
    for number, name in numbers.items():
        if name not in outcomes:
            raise ScenarioError(f"numbers.{number}: unknown outcome {name!r}")
    distribution = []
    for i, entry in enumerate(doc.get("distribution") or []):
        if not isinstance(entry, dict) or entry.get("outcome") not in outcomes:
            raise ScenarioError(f"distribution[{i}]: needs an 'outcome' naming an entry of outcomes")
        distribution.append((_number(entry, "weight", f"distribution[{i}]", 1.0), entry["outcome"]))
    if not distribution:
        distribution = [(1.0, next(iter(outcomes)))]
    if sum(w for w, _ in distribution) <= 0:
        raise ScenarioError("distribution: weights must not all be zero")
    agents = {}
    for ext, obj in (doc.get("agents") or {}).items():
        where = f"agents.{ext}"
        if not isinstance(obj, dict):
            raise ScenarioError(f"{where}: must be an object")
        agents[str(ext)] = Agent(
            extension=str(ext),
            registered=bool(obj.get("registered", True)),
            answers=bool(obj.get("answers", True)),
            answer_after=_number(obj, "answer_after", where, 1.0),
            steps=_steps(obj.get("callee"), where, base_dir),
        )
    gateways = {}
    for gw, obj in (doc.get("gateways") or {"gw1": {}}).items():
        obj = obj or {}
        gateways[str(gw)] = {
            "proxy": str(obj.get("proxy", "127.0.0.1")),
            "state": str(obj.get("state", "REGED")),
        }
    seed = doc.get("seed", 0)
    if not isinstance(seed, int):
        raise ScenarioError("'seed' must be an integer")
    return Scenario(outcomes, numbers, distribution, agents, gateways, seed, base_dir)


def load(path: str | Path | None = None) -> Scenario:
    """Read and validate a scenario file (the shipped default when ``path`` is None)."""
    path = Path(path) if path else DEFAULT_SCENARIO
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not valid JSON: {exc}") from exc
    return parse(doc, path.resolve().parent)
