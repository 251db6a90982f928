"""LLM mode (大模型外呼): replies come from an OpenAI-compatible chat endpoint with the
script's prompt and knowledge as context, guarded by a timeout and a token cap. A failure or
an empty reply falls back to the script's no-match path; `hang_up` and `transfer` are tools
the model may call. Same command interface as `ScriptEngine` (start / on_utterance /
on_no_input → commands; `state` for grading)."""

from __future__ import annotations

import logging
import time

from core.dialogue import intents as im
from core.dialogue.engine import EngineState, Hangup, Listen, Say, Transfer
from core.dialogue.schema import Flow
from core.llm import ChatClient, LlmError
from core.llm.client import TOOLS

log = logging.getLogger(__name__)
NODE = "llm"


class LlmEngine:
    def __init__(self, flow: Flow, variables: dict, client: ChatClient | None):
        self.flow, self.variables, self.client = flow, dict(variables or {}), client
        self.state = EngineState(node=NODE)
        self.messages: list[dict] = [{"role": "system", "content": self._system()}]
        self.last_external_s = 0.0
        self.failures = 0

    def _system(self) -> str:
        llm = self.flow.llm
        parts = [_fill(llm.system_prompt, self.variables),
                 "这是一通电话，回答要口语化、简短（一两句话），不要使用列表或表情。"
                 "客户明确拒绝或要结束时，说告别语并调用 hang_up；客户要求人工时调用 transfer。"]
        if self.flow.knowledge:
            parts.append("知识库：\n" + "\n".join(
                f"- {k.name}：{k.answer.render(self.variables)}" for k in self.flow.knowledge))
        known = {k: v for k, v in self.variables.items() if v not in (None, "")}
        if known:
            parts.append("客户信息：" + "，".join(f"{k}={v}" for k, v in known.items()))
        return "\n\n".join(parts)

    def start(self):
        opening = _fill(self.flow.llm.opening, self.variables) or _fill(
            self.flow.nodes[self.flow.start].prompt.text, self.variables)
        self.state.nodes.append(NODE)
        self.messages.append({"role": "assistant", "content": opening})
        return [Say(opening, None, True, NODE), Listen(NODE)]

    def on_utterance(self, text: str):
        st = self.state
        if st.ended:
            return []
        st.interactions += 1
        heard = im.match_all(text, self.flow.intents.values())
        st.intents.extend(heard)
        if "assistant" in heard:
            st.assistant = True
        if not im.normalise(text):
            st.unrecognised += 1
            return self._fallback()
        self.messages.append({"role": "user", "content": text})
        if st.interactions > self.flow.llm.max_turns:
            return self._close("时间关系先聊到这里，感谢您的接听，再见。")
        t0 = time.monotonic()
        try:
            if self.client is None:
                raise LlmError("no LLM endpoint configured (LLM_URL)")
            reply = self.client.chat(self.messages, TOOLS, timeout=self.flow.llm.timeout_s,
                                     max_tokens=self.flow.llm.max_tokens)
        except LlmError as exc:
            log.info("LLM failed (%s); script no-match path", exc)
            self.last_external_s = time.monotonic() - t0
            st.unrecognised += 1
            return self._fallback()
        self.last_external_s = time.monotonic() - t0
        self.failures = 0
        tools = {c.name for c in reply.tool_calls}
        say = reply.text
        if say:
            self.messages.append({"role": "assistant", "content": say})
        if "transfer" in tools:
            st.ended = True
            return [*([Say(say, None, False, NODE, "closing")] if say else []),
                    Transfer("llm")]
        if "hang_up" in tools:
            return self._close(say or "好的，感谢您的接听，再见。")
        if not say:
            st.unrecognised += 1
            return self._fallback()
        return [Say(say, None, True, NODE), Listen(NODE)]

    def on_no_input(self):
        if self.state.ended:
            return []
        retry = self.flow.no_input
        self.state.no_input_count += 1
        if self.state.no_input_count > retry.max:
            return self._close(None)
        return [Say(retry.prompt.render(self.variables), retry.prompt.audio, True, NODE,
                    "no_input"), Listen(NODE)]

    def _fallback(self):
        """The script's no-match path: re-prompt up to `max`, then hang up."""
        self.failures += 1
        retry = self.flow.no_match
        if self.failures > retry.max:
            return self._close(None)
        return [Say(retry.prompt.render(self.variables), retry.prompt.audio, True, NODE,
                    "no_match"), Listen(NODE)]

    def _close(self, text: str | None):
        self.state.ended = True
        return [*([Say(text, None, False, NODE, "closing")] if text else []), Hangup()]


def _fill(text: str, variables: dict) -> str:
    from core.dialogue.schema import Prompt
    return Prompt(text=text or "").render(variables)
