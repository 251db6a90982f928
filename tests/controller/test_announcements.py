"""The carrier's recording decides the status (CPA.md): with CPA_DETECTOR=tonedetect the
controller dials with mod_tonedetect started at 183 (simswitch plays it), takes its
verdict as the call's status and hangs up at once instead of listening to the looping
recording until the carrier's final answer."""

import pytest

from core.enums import TaskState
from tests.controller.conftest import phones, wait_until

pytestmark = pytest.mark.slow

SPEED = 5.0
LATE_S = 20  # the carrier's final answer, long after its recording was recognised (1.4 s)
OUTCOMES = {
    "off_480": {"result": "sip", "sip": 480, "after": LATE_S, "category": "关机",
                "early_media": {"seconds": 1.0, "text": "您拨打的电话已关机"}},
    "vacant_404": {"result": "vacant", "after": LATE_S, "category": "空号",
                   "early_media": {"seconds": 1.0, "text": "您拨打的号码是空号"}},
    "ring_back_480": {"result": "sip", "sip": 480, "after": 3,
                      "early_media": {"seconds": 1.0, "text": "（彩铃）"}},
}


def _run(world, detector: str) -> dict:
    numbers = phones(3)
    plan = dict(zip(numbers, OUTCOMES, strict=True))
    sw = world.simswitch(plan, outcomes=OUTCOMES, speed=SPEED)
    task_id, _ = world.seed(numbers)
    world.controller(sw.port, env={"CPA_DETECTOR": detector})
    wait_until(lambda: world.task(task_id).state == TaskState.FINISHED, 60)
    return {plan[c.phone]: c for c in world.calls(task_id)}


def test_a_recognised_recording_gives_the_status_and_ends_the_call(world):
    calls = _run(world, "tonedetect")
    off, vacant, ring_back = calls["off_480"], calls["vacant_404"], calls["ring_back_480"]
    assert (off.status, off.announcement) == ("powered_off", "关机")
    assert (vacant.status, vacant.announcement) == ("vacant", "空号")
    for call in (off, vacant):  # we hung up on the verdict, not waiting for the final answer
        simulated_s = (call.ended_at - call.originated_at).total_seconds() * SPEED
        assert simulated_s < LATE_S / 2, simulated_s
        assert call.hangup_side == "system"
        assert call.answered_at is None and call.recording_path is None
    # a colour ring-back is no verdict: the carrier's answer decides
    assert (ring_back.status, ring_back.announcement, ring_back.sip_code) == (
        "no_answer", None, 480)


def test_without_a_detector_the_final_answer_decides(world):
    calls = _run(world, "none")
    assert {name: (c.status, c.sip_code, c.announcement) for name, c in calls.items()} == {
        "off_480": ("no_answer", 480, None), "vacant_404": ("vacant", 404, None),
        "ring_back_480": ("no_answer", 480, None)}
