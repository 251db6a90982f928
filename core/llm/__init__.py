"""OpenAI-compatible chat completions for LLM-mode dialogue (大模型外呼)."""

from core.llm.client import ChatClient, ChatReply, LlmError, ToolCall

__all__ = ["ChatClient", "ChatReply", "LlmError", "ToolCall"]
