"""A client for an OpenAI-compatible `/v1/chat/completions` endpoint (DeepSeek, Qwen, vLLM,
Ollama …) with a timeout, a token cap and tool calls."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from core.llm.http import HttpError, post_json


class LlmError(RuntimeError):
    """The endpoint failed, timed out or answered something unusable."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict


@dataclass(frozen=True)
class ChatReply:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: dict = field(default_factory=dict)


class ChatClient:
    """`base_url` is the part before `/v1/...` (a trailing /v1 is accepted too)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 timeout: float = 8.0, max_tokens: int = 200):
        base = base_url.rstrip("/")
        self.url = (base if base.endswith("/v1") else base + "/v1") + "/chat/completions"
        self.model, self.api_key = model, api_key
        self.timeout, self.max_tokens = timeout, max_tokens

    def chat(self, messages: list[dict], tools: list[dict] | None = None,
             timeout: float | None = None, max_tokens: int | None = None) -> ChatReply:
        """One completion; raises LlmError (timeouts included)."""
        payload = {"model": self.model, "messages": messages,
                   "max_tokens": max_tokens or self.max_tokens, "temperature": 0.3,
                   "stream": False}
        if tools:
            payload["tools"] = tools
        try:
            data = post_json(self.url, payload, timeout or self.timeout, self.api_key)
            msg = data["choices"][0]["message"]
        except HttpError as exc:
            raise LlmError(str(exc)) from None
        except (KeyError, IndexError, TypeError):
            raise LlmError("unexpected answer shape") from None
        calls = []
        for call in msg.get("tool_calls") or ():
            fn = call.get("function") or {}
            try:
                args = json.loads(fn.get("arguments") or "{}")
            except ValueError:
                args = {}
            calls.append(ToolCall(str(fn.get("name")), args if isinstance(args, dict) else {}))
        return ChatReply((msg.get("content") or "").strip(), tuple(calls), data.get("usage") or {})


# Tools offered to the model in LLM mode.
TOOLS = [
    {"type": "function", "function": {
        "name": "hang_up", "description": "结束通话（说完告别语之后）。",
        "parameters": {"type": "object", "properties": {
            "reason": {"type": "string", "description": "为什么结束"}}}}},
    {"type": "function", "function": {
        "name": "transfer", "description": "把电话转给人工坐席。",
        "parameters": {"type": "object", "properties": {
            "reason": {"type": "string"}}}}},
]
