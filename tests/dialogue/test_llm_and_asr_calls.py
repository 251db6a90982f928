"""LLM mode against a local OpenAI-compatible server (replies, tools, timeout fallback), and
a call recognised by a local FunASR server instead of the scripted recogniser."""

import copy

from core.dialogue import schema
from tests.dialogue import audio as A
from tests.dialogue.fakes import FakeFunAsr, FakeOpenAi
from tests.dialogue.harness import Rig


def llm_script(timeout_s=3.0):
    body = copy.deepcopy(schema.EXAMPLE)
    body["mode"] = "llm"
    body["llm"] = {"system_prompt": "你是云帆科技的客服小云，推广宽带提速。", "opening":
                   "您好{姓名}，我是云帆科技的小云。", "max_tokens": 64, "timeout_s": timeout_s}
    body["no_match"] = {"prompt": {"text": "不好意思，信号不好，您刚才说什么？"}, "max": 1}
    return body


def scenario(tmp_path, lines):
    steps = []
    for n, text in enumerate(lines, 1):
        name = f"l{n}.wav"
        A.write(tmp_path / name, A.speech(text))
        steps.append({"say": {"file": name, "text": text}, "after_prompt": n, "delay": 0.3})
    return {"numbers": {"13800000001": "c"}, "outcomes": {"c": {
        "result": "answer", "after": 0.5, "hangup_after": 60, "callee": steps}}}


def test_llm_conversation_with_hang_up_tool(tmp_path):
    A.require_espeak()
    replies = [{"content": "我们的宽带提速每月只加十元，您有兴趣吗？"},
               {"content": "好的，稍后专员联系您，再见。", "tool": "hang_up",
                "args": {"reason": "客户有意向"}}]
    with FakeOpenAi(replies) as llm:
        with Rig(tmp_path, scenario(tmp_path, ["你好，什么事", "可以，我有兴趣"]),
                 llm={"url": llm.url, "model": "qwen-test"}) as rig:
            result = rig.call(llm_script(), variables={"姓名": "李女士"})
    robot = [t.text for t in result.turns if t.speaker == "robot"]
    assert robot == ["您好李女士，我是云帆科技的小云。", replies[0]["content"],
                     replies[1]["content"]]
    first = llm.requests[0]
    assert first["model"] == "qwen-test" and first["max_tokens"] == 64
    assert "推广宽带提速" in first["messages"][0]["content"]  # the script's prompt …
    assert "十元" in first["messages"][0]["content"]  # … and its knowledge as context
    assert first["messages"][-1] == {"role": "user", "content": "你好，什么事"}
    assert {t["function"]["name"] for t in first["tools"]} == {"hang_up", "transfer"}
    assert result.hangup_side == "robot" and result.grade in ("A", "B")
    assert result.latencies_ms  # measured without the LLM's own time


def test_llm_timeout_falls_back_to_the_no_match_path(tmp_path):
    A.require_espeak()
    with FakeOpenAi([{"content": "太慢了"}] * 3, delay=2.0) as llm:
        with Rig(tmp_path, scenario(tmp_path, ["你好", "喂？"]),
                 llm={"url": llm.url}) as rig:
            result = rig.call(llm_script(timeout_s=0.4))
    robot = [t.text for t in result.turns if t.speaker == "robot"]
    assert robot[1] == "不好意思，信号不好，您刚才说什么？"  # no-match re-prompt
    assert len(robot) == 2 and result.end_reason == "script"  # then hang-up after max
    assert result.unrecognised == 2


def test_call_recognised_by_funasr(tmp_path):
    A.require_espeak()
    with FakeFunAsr(["是的，你说", "可以，我有兴趣"]) as asr:
        with Rig(tmp_path, scenario(tmp_path, ["是的，你说", "可以，我有兴趣"]),
                 asr={"kind": "funasr", "url": asr.url}) as rig:
            result = rig.call(copy.deepcopy(schema.EXAMPLE))
    callee = [t.text for t in result.turns if t.speaker == "callee"]
    assert callee == ["是的，你说", "可以，我有兴趣"]
    assert result.grade == "A"
    assert all(n > 8000 for n in asr.audio_bytes)  # the callee's real audio reached it
