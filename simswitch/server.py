"""``SimSwitch``: the programmatic entry point that wires clock, scenario, switch core, ESL
server, audio fork, recorder and CDR poster together.

    sw = SimSwitch("127.0.0.1", 0, "ClueCon", scenario="my.json", recordings_dir="/tmp/rec",
                   clock=FastClock(20))
    sw.start(); ...; sw.port; ...; sw.stop()
"""

from pathlib import Path

from simswitch import scenario as scenario_mod
from simswitch.audio_fork import DEFAULT_SUBPROTOCOL, ForkManager
from simswitch.cdr import CdrPoster
from simswitch.clock import RealClock
from simswitch.commands import Commands
from simswitch.esl_server import EslServer
from simswitch.recording import Recorder
from simswitch.switch import Switch


class SimSwitch:
    """A FreeSWITCH stand-in listening for ESL clients on ``esl_host:esl_port`` (0 = any free).

    ``scenario`` is a path, a parsed ``Scenario``, or None for the shipped default.
    """

    def __init__(
        self,
        esl_host: str = "127.0.0.1",
        esl_port: int = 8021,
        password: str = "ClueCon",
        scenario=None,
        recordings_dir: str | Path = "./data/recordings",
        cdr_url: str | None = None,
        clock=None,
        fork_subprotocol: str | None = DEFAULT_SUBPROTOCOL,
        heartbeat: bool = True,
        cdr_retries: int = 3,
        cdr_retry_delay: float = 5.0,
    ):
        self.clock = clock or RealClock()
        gateway_config = None
        if scenario is None or isinstance(scenario, str | Path):
            # `sofia profile external rescan` reads the file again, as FreeSWITCH fetches
            # sofia.conf again (simswitch/sofia.py).
            gateway_config = _file_gateways(scenario)
            scenario = scenario_mod.load(scenario)
        self.scenario = scenario
        self.recordings_dir = Path(recordings_dir)
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        self.recorder = Recorder(lambda: self.switch, self.recordings_dir)
        self.forks = ForkManager(lambda: self.switch, fork_subprotocol)
        self.switch = Switch(self.clock, scenario, self.recorder, forks=self.forks,
                             gateway_config=gateway_config)
        if cdr_url:
            self.switch.cdr = CdrPoster(
                cdr_url, self.clock, self.switch.core_uuid, self.switch.hostname, cdr_retries, cdr_retry_delay
            )
        self.commands = Commands(self.switch, self.forks, self.recorder)
        self.esl = EslServer(self.switch, self.commands, esl_host, esl_port, password)
        self._heartbeat = heartbeat

    def start(self) -> "SimSwitch":
        """Start listening (non-blocking; runs on the gevent hub)."""
        self.esl.start()
        if self._heartbeat:
            self.switch.start_heartbeat()
        return self

    @property
    def port(self) -> int:
        return self.esl.port

    @property
    def cdr(self) -> CdrPoster | None:
        return self.switch.cdr

    def stop(self) -> None:
        """Hang up every call, close every connection, stop listening."""
        self.switch.stop()
        self.esl.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _file_gateways(path):
    def read() -> dict:
        try:
            return scenario_mod.load(path).gateways
        except OSError as exc:  # the file went away: the configuration cannot be read
            raise scenario_mod.ScenarioError(str(exc)) from exc
    return read
