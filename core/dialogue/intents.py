"""Intent matching for the callee's words: keywords, synonyms and regular expressions with
priorities, plus built-in Chinese intents (affirm, deny, refuse, busy, robot, assistant).

Pure: no I/O. `match(text, intents)` returns the best `IntentMatch` or None. Among intents
that match, the highest priority wins, then the longest matched span (so 不需要 beats 需要),
then the order given.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# Punctuation and spaces carry no meaning for keyword spotting in ASR output.
_STRIP = re.compile(r"[\s\u3000,.!?;:'\"，。！？；：、…~～\-—()（）\[\]【】《》<>]+")


def normalise(text: str) -> str:
    """NFKC (full-width → half-width), lower case, no punctuation or spaces."""
    return _STRIP.sub("", unicodedata.normalize("NFKC", text or "")).lower()


@dataclass(frozen=True)
class Intent:
    """One intent: any keyword, synonym or regular expression matching names it."""

    name: str
    keywords: tuple[str, ...] = ()
    regexes: tuple[str, ...] = ()
    priority: int = 0
    # Phrases that look like a keyword but mean the opposite (没问题 is not 问题).
    exclude: tuple[str, ...] = ()
    _compiled: tuple = field(default=(), compare=False, repr=False)

    @classmethod
    def build(cls, name: str, keywords=(), synonyms=(), regexes=(), priority: int = 0,
              exclude=()) -> Intent:
        words = tuple(dict.fromkeys(normalise(w) for w in (*keywords, *synonyms) if normalise(w)))
        compiled = tuple(re.compile(r) for r in regexes)  # re.error propagates to validation
        return cls(name, words, tuple(regexes), int(priority),
                   tuple(normalise(e) for e in exclude if normalise(e)), compiled)

    def span(self, norm: str, raw: str) -> int:
        """Length of the longest match in `norm` (normalised) / `raw`; 0 when none."""
        masked = norm
        for phrase in self.exclude:
            masked = masked.replace(phrase, "\0" * len(phrase))
        best = 0
        for word in self.keywords:
            if word in masked:
                best = max(best, len(word))
        for rx in self._compiled:
            m = rx.search(raw) or rx.search(norm)
            if m:
                best = max(best, len(m.group(0)) or 1)
        return best


@dataclass(frozen=True)
class IntentMatch:
    intent: str
    span: int
    priority: int


def match(text: str, intents: list[Intent] | tuple[Intent, ...]) -> IntentMatch | None:
    """The best intent for `text` among `intents`, or None."""
    norm = normalise(text)
    if not norm:
        return None
    best: IntentMatch | None = None
    for intent in intents:
        span = intent.span(norm, text)
        if span and (best is None or (intent.priority, span) > (best.priority, best.span)):
            best = IntentMatch(intent.name, span, intent.priority)
    return best


def match_all(text: str, intents) -> list[str]:
    """Names of every intent that matches `text` (for grading facts)."""
    norm = normalise(text)
    return [i.name for i in intents if norm and i.span(norm, text)]


# Built-in Chinese intents. Negative forms are longer than the positive words they contain,
# so the longest-span rule picks them (不需要 over 需要, 不可以 over 可以).
BUILTIN: dict[str, Intent] = {
    i.name: i for i in (
        Intent.build("affirm", keywords=(
            "是的", "是啊", "对", "对的", "好", "好的", "好啊", "可以", "行", "行啊", "没问题",
            "嗯", "嗯嗯", "有兴趣", "感兴趣", "需要", "要的", "愿意", "当然", "ok", "yes",
            "了解一下", "说吧", "你说", "请讲", "发给我", "加微信"),
            exclude=("不好", "不可以", "不行", "不需要", "不要", "不感兴趣", "没兴趣", "不愿意",
                     "不对", "不是", "好的再见")),
        Intent.build("deny", keywords=(
            "不是", "不对", "不需要", "不要", "不用", "没有", "没兴趣", "不感兴趣", "不可以",
            "不行", "算了", "不考虑", "不了", "no"), priority=1),
        Intent.build("refuse", keywords=(
            "别打了", "不要再打", "别再打", "骚扰", "投诉", "拉黑", "滚", "有病", "神经病",
            "再打我就报警"), priority=3),
        Intent.build("busy", keywords=(
            "在忙", "正忙", "很忙", "开会", "开车", "没空", "没时间", "不方便", "晚点打",
            "晚点再说", "稍后再打", "回头再说", "上班"), priority=2),
        Intent.build("robot", keywords=(
            "机器人", "你是真人", "是不是真人", "真人吗", "人工智能", "录音吗", "电脑"),
            regexes=(r"(是|你).{0,3}(机器|ai|AI)",), priority=4),
        Intent.build("assistant", keywords=(
            "智能助理", "语音助手", "来电助理", "机主的助理", "秘书", "助理", "小爱同学", "请问您有什么事",
            "有什么事吗我帮您转告", "转告机主", "机主暂时无法接听", "正在通话中请留言"),
            priority=5),
    )
}

BUILTIN_NAMES = tuple(BUILTIN)
