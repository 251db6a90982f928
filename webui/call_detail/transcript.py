"""The dialogue as the detail and share pages show it, and as plain text to copy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.models import DialogueTurn


def mmss(ms: int | None) -> str:
    """Milliseconds since the call started as mm:ss (minutes keep counting past 59)."""
    seconds = max(0, int(ms or 0)) // 1000
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True)
class Line:
    """One turn of the conversation, ready for a template."""

    speaker: str  # core.enums.Speaker value
    text: str
    at: str  # mm:ss from the call start
    start_s: float  # where the player seeks to
    end_s: float
    interrupted: bool  # the robot was barged in on
    intent: str | None


def lines(turns: Iterable[DialogueTurn]) -> list[Line]:
    return [Line(t.speaker, t.text or "", mmss(t.start_ms), max(0, t.start_ms or 0) / 1000,
                 max(0, t.end_ms or 0) / 1000, bool(t.interrupted), t.intent)
            for t in turns]


def plain_text(conversation: Iterable[Line], speakers: Mapping[str, str],
               interrupted_mark: str) -> str:
    """"[mm:ss] Speaker: text" a line; `speakers` names each speaker value (translated),
    `interrupted_mark` is appended to turns the callee barged in on."""
    out = []
    for line in conversation:
        mark = f" ({interrupted_mark})" if line.interrupted else ""
        out.append(f"[{line.at}] {speakers.get(line.speaker, line.speaker)}: {line.text}{mark}")
    return "\n".join(out)
