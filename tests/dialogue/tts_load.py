"""Run as `python -m tests.dialogue.tts_load <cache dir> <calls>` (monkey-patched, as the
controller process is): <calls> dialogues start at once and each needs a prompt nobody has
synthesised yet, while a probe greenlet measures how late the hub wakes it. Prints JSON."""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

from controller.dialogue.services import DialogueServices  # noqa: E402
from core.tts import CachedTts, EspeakTts  # noqa: E402

TICK = 0.005


def main(cache: Path, calls: int) -> dict:
    svc = DialogueServices(tts=CachedTts(EspeakTts(), cache), prompts_dir=cache,
                           media_url="")
    svc.synthesize("您好")  # the helper process is up before the burst
    lags, stop = [], False

    def probe():
        while not stop:
            t = time.perf_counter()
            gevent.sleep(TICK)
            lags.append(time.perf_counter() - t - TICK)

    prober = gevent.spawn(probe)
    texts = [f"您好，第{i}位客户，我是云帆科技的客服，想跟您确认一下宽带提速的优惠。"
             for i in range(calls)]
    started = time.perf_counter()
    # Every call twice: the dialogue's own request and its prewarm ask for the same text.
    jobs = [gevent.spawn(svc.synthesize, t) for t in texts for _ in range(2)]
    gevent.joinall(jobs)
    took = time.perf_counter() - started
    stop = True
    prober.join()
    helper = svc._worker._helper.proc
    helper.kill()  # a helper that died is started again by the next request
    helper.wait()
    again = svc.synthesize("它又回来了")
    svc.close()
    lags.sort()
    return {"ok": sum(1 for j in jobs if j.successful() and Path(j.value).is_file()),
            "files": len(list(cache.rglob("*.wav"))), "seconds": took,
            "max_lag_ms": lags[-1] * 1000, "p99_lag_ms": lags[int(len(lags) * 0.99)] * 1000,
            "misses": svc.tts.misses, "after_restart": again.is_file()}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]))))
