"""``python -m simswitch``: run the FreeSWITCH stand-in (see simswitch/README.md)."""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

from simswitch.clock import make_clock  # noqa: E402
from simswitch.scenario import DEFAULT_SCENARIO, ScenarioError  # noqa: E402
from simswitch.server import SimSwitch  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m simswitch",
        description="simswitch: a FreeSWITCH 1.10 stand-in speaking the Event Socket (inbound), "
        "mod_audio_fork and mod_json_cdr, driven by a scenario file. It models calls; it does not "
        "speak SIP or RTP (see simswitch/README.md).",
    )
    p.add_argument("--esl-host", default="127.0.0.1", help="ESL listen address (default: 127.0.0.1, loopback only)")
    p.add_argument("--esl-port", type=int, default=8021, help="ESL port (default: 8021)")
    p.add_argument("--password", default="ClueCon", help="ESL password (default: ClueCon)")
    p.add_argument("--scenario", default=None, help=f"scenario JSON file (default: {DEFAULT_SCENARIO.name} shipped in simswitch/)")
    p.add_argument("--recordings-dir", default="./data/recordings", help="where relative uuid_record paths go (default: ./data/recordings)")
    p.add_argument("--cdr-url", default=None, help="POST each CDR (mod_json_cdr style JSON) to this URL (default: off)")
    p.add_argument("--speed", type=float, default=1.0, help="clock speed: 1 = real time (default); 10 = ten times faster (tests/demos)")
    p.add_argument("--fork-subprotocol", default="audio.drachtio.org", help="WebSocket subprotocol of audio forks (default: audio.drachtio.org)")
    p.add_argument("--log-level", default="INFO", help="Python log level (default: INFO)")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        sw = SimSwitch(
            args.esl_host, args.esl_port, args.password, scenario=args.scenario, recordings_dir=args.recordings_dir,
            cdr_url=args.cdr_url, clock=make_clock(args.speed), fork_subprotocol=args.fork_subprotocol or None,
        )
    except ScenarioError as exc:
        p.error(str(exc))
    sw.start()
    logging.getLogger("simswitch").info("ESL listening on %s:%d (speed %sx)", args.esl_host, sw.port, args.speed)
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    sw.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
