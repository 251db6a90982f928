"""Benchmark: N concurrent simulated calls, each with an audio fork streaming 20 ms L16
frames in real time to a local WebSocket sink; prints events/s, frames/s and CPU used.

    python scripts/bench_simswitch.py --calls 1000 --seconds 20
"""

import argparse
import multiprocessing
import os
import resource
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gevent  # noqa: E402
import greenswitch  # noqa: E402

from simswitch import SimSwitch  # noqa: E402
from simswitch.scenario import parse  # noqa: E402


def _sink_process(port_pipe, byte_counter):
    """A minimal WebSocket sink in its own process (plain epoll, no gevent): handshake, then
    discard what arrives, counting bytes."""
    import base64
    import hashlib
    import selectors
    import socket

    sel = selectors.DefaultSelector()
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ)
    port_pipe.send(listener.getsockname()[1])
    heads, buf, total = {}, bytearray(1 << 20), 0
    while True:
        for key, _ in sel.select(timeout=1.0):
            sock = key.fileobj
            if sock is listener:
                conn, _ = listener.accept()
                conn.setblocking(False)
                heads[conn] = b""
                sel.register(conn, selectors.EVENT_READ)
                continue
            try:
                n = sock.recv_into(buf)
            except BlockingIOError:
                continue
            except OSError:
                n = 0
            if not n:
                sel.unregister(sock)
                heads.pop(sock, None)
                sock.close()
                continue
            head = heads.get(sock)
            if head is not None:
                head += bytes(buf[:n])
                if b"\r\n\r\n" not in head:
                    heads[sock] = head
                    continue
                del heads[sock]
                wskey = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n") if ln.lower().startswith(b"sec-websocket-key")][0]
                accept = base64.b64encode(hashlib.sha1(wskey + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
                sock.setblocking(True)
                sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: audio.drachtio.org\r\n\r\n")
                sock.setblocking(False)
                continue
            total += n
        byte_counter.value = total


def ws_sink():
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    counter = ctx.Value("q", 0, lock=False)
    proc = ctx.Process(target=_sink_process, args=(child, counter), daemon=True)
    proc.start()
    return proc, parent.recv(), counter


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def answered(sw, uuids) -> int:
    return sum(1 for u in uuids if (sess := sw.switch.get(u)) is not None and sess.ch.answered)


def frames_sent(sw) -> int:
    return sum(f.frames_sent for s in sw.switch.sessions.values() for f in s.forks.values())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=20.0, help="measured window with all calls up")
    a = p.parse_args()
    doc = {"outcomes": {"talk": {"result": "answer", "after": 0.5, "ring_after": 0.1, "noise_dbfs": -50,
                                 "callee": [{"say": {"seconds": 2.0, "text": "喂"}, "at": 0.5}]}}}
    sw = SimSwitch("127.0.0.1", 0, "ClueCon", scenario=parse(doc, os.getcwd()), recordings_dir="/tmp/bench_rec").start()
    sink, sink_port, sink_bytes = ws_sink()
    fs = greenswitch.InboundESL("127.0.0.1", sw.port, "ClueCon")
    fs.connect()
    count = {"events": 0, "order_errors": 0}
    last_seq = {}

    def on_event(e):
        count["events"] += 1
        count["last"] = time.time()
        u, s = e.headers.get("Unique-ID"), int(e.headers.get("Event-Sequence", 0))
        if u:
            if s <= last_seq.get(u, 0):
                count["order_errors"] += 1
            last_seq[u] = s

    fs.register_handle("*", on_event)
    fs.send("event plain ALL")
    uuids = [str(uuid.uuid4()) for _ in range(a.calls)]
    cpu0, t0, ev_start = cpu_seconds(), time.time(), count["events"]
    jobs = [gevent.spawn(fs.send, f"bgapi originate {{origination_uuid={u}}}sofia/gateway/gw1/{u[:8]} &park()") for u in uuids]
    gevent.joinall(jobs, timeout=120)
    while answered(sw, uuids) < a.calls and time.time() - t0 < 120:
        gevent.sleep(0.2)
    setup_wall, setup_cpu, setup_events = time.time() - t0, cpu_seconds() - cpu0, count["events"] - ev_start
    print(f"setup: {a.calls} calls answered+parked in {setup_wall:.1f}s; {setup_events} events = "
          f"{setup_events / setup_wall:.0f} events/s; CPU {100 * setup_cpu / setup_wall:.0f}% of one core")

    for u in uuids:
        fs.send(f"api uuid_audio_fork {u} start ws://127.0.0.1:{sink_port}/ mono 8k {{}}")
    gevent.sleep(2)
    frames0 = frames_sent(sw)
    cpu0, w0 = cpu_seconds(), time.time()
    gevent.sleep(a.seconds)
    wall, cpu = time.time() - w0, cpu_seconds() - cpu0
    frames = frames_sent(sw) - frames0
    print(f"streaming: {a.calls} audio forks for {wall:.1f}s: {frames / wall:.0f} frames/s "
          f"({100 * frames / (a.calls * wall / 0.02):.1f}% of real time); CPU {100 * cpu / wall:.0f}% of one core; "
          f"sink got {sink_bytes.value / 1e6:.1f} MB")

    cpu0, t1, ev_start = cpu_seconds(), time.time(), count["events"]
    for u in uuids:
        fs.send(f"bgapi uuid_kill {u}")
    while sw.switch.sessions and time.time() - t1 < 120:
        gevent.sleep(0.1)
    gevent.sleep(0.5)
    wall, cpu, events = count["last"] - t1, cpu_seconds() - cpu0, count["events"] - ev_start
    print(f"teardown: {a.calls} hang-ups in {wall:.1f}s; {events} events = {events / wall:.0f} events/s; "
          f"CPU {100 * cpu / wall:.0f}% of one core")
    print(f"per-channel event order errors: {count['order_errors']}; events received in total: {count['events']}")
    print("(CPU = this process: simswitch + the greenswitch client; the WebSocket sink runs in its own process)")
    fs.stop()
    sw.stop()
    sink.terminate()


if __name__ == "__main__":
    main()
