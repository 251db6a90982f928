"""mod_tonedetect (lixuanqun/mod_ring_asr, CPA.md §4.3) as simswitch plays it: the one
`execute_on_pre_answer*` hook simswitch runs.

A real deployment dials `{execute_on_pre_answer=start_tonedetect,…}`; at 183 the module puts
a media bug on the leg and streams the early media to its recognition server, which matches
the carrier's announcement against a sample library and answers with a category (关机,
空号 …). The module then sets `tonedetect_da_*` channel variables and fires
`CUSTOM tonedetect` with `tonedetect_source: server` and the same headers
(`mod_tonedetect.c` ws_on_result); an `ACCURACY` sample match hangs the leg up unless
`tonedetect_autohangup` is false.

Here the scenario's `category` is what the server recognises, at the end of the
recording's first segment (the server's VAD cuts at pauses of about 200 ms: "您拨打的电话已关机，"
before its English half) plus the server's turn-around. A leg with early media but no
category (a colour ring-back) gets no verdict, as the server has no sample for music.
"""

from __future__ import annotations

import numpy as np

HOOK = "execute_on_pre_answer"
APP = "start_tonedetect"
TURNAROUND_S = 0.2  # the server's answer after the segment's closing pause
FRAME_S, PAUSE_S = 0.02, 0.2
QUIET = 0.1  # a frame under a tenth of the recording's loudest frame RMS is a pause
# The states' English aliases (ddrj mod_da2's table, which mod_ring_asr copies; CPA.md §2).
ALIASES = {
    "关机": "power off", "空号": "does not exist", "停机": "out of service",
    "正在通话中": "hold on", "用户拒接": "not convenient", "无法接通": "is not reachable",
    "暂停服务": "not in service", "用户正忙": "busy now", "拨号方式不正确": "not a local number",
    "呼入限制": "barring of incoming", "来电提醒": "call reminder", "呼叫转移失败": "forwarded",
    "网络忙": "line is busy", "无人接听": "not answer", "欠费": "defaulting",
    "无法接听": "cannot be connected", "改号": "number change", "线路故障": "line fault",
    "稍后再拨": "redial later",
}


def requested(variables: dict) -> bool:
    """Whether the leg runs start_tonedetect at pre-answer. FreeSWITCH runs every variable
    whose name starts with execute_on_pre_answer, any case (switch_channel_execute_on), its
    value being `app args`."""
    return any(name.lower().startswith(HOOK) and value.split(" ", 1)[0] == APP
               for name, value in variables.items())


def first_segment_s(samples: np.ndarray, rate: int) -> float:
    """Where the first stretch of sound in `samples` ends and a pause of PAUSE_S has
    followed it (seconds); the whole recording when it never pauses."""
    frame = int(rate * FRAME_S)
    count = len(samples) // frame
    if count == 0:
        return len(samples) / rate
    rms = np.sqrt(np.mean(samples[:count * frame].astype(np.float64).reshape(count, frame) ** 2,
                          axis=1))
    loud = rms > QUIET * rms.max() if rms.max() > 0 else np.zeros(count, bool)
    need, quiet, voiced = round(PAUSE_S / FRAME_S), 0, False
    for i, is_loud in enumerate(loud):
        if is_loud:
            voiced, quiet = True, 0
        elif voiced:
            quiet += 1
            if quiet >= need:
                return (i + 1) * FRAME_S
    return len(samples) / rate


def start(switch, sess, category: str, heard_after: float) -> None:
    """Run the detector on `sess`'s early media: `category` is recognised `heard_after`
    simulated seconds from now, if the leg is still ringing then."""
    if not category:
        return

    def verdict() -> None:
        sess.sleep(heard_after + TURNAROUND_S)
        ch = sess.ch
        if not ch.up or ch.answered:
            return
        headers = [("tonedetect_source", "server"), ("tonedetect_da_tone", "sample"),
                   ("tonedetect_da_accuracy", "ACCURACY"),
                   ("tonedetect_da_alias", ALIASES.get(category, "")),
                   ("tonedetect_da_category", category)]
        for name, value in headers[1:]:
            ch.set_var(name, value)
        ch.set_var("tonedetect_finish_cause", "sample")
        switch.custom_event(ch, "tonedetect", headers)
        if ch.variables.get("tonedetect_autohangup", "true").lower() not in (
                "false", "no", "off", "0"):
            switch.hangup(ch, "NORMAL_CLEARING", sip_status=487, disposition="send_cancel")

    sess.group.spawn(sess._guard, verdict)
