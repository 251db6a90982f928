"""The one settings module: environment variables (and an optional `.env`) with embedded defaults.

Every process (web, controller, workers, launcher) calls `get_settings()`. A bad value raises
`SettingsError` naming the variable, and the entry points turn that into a one-line message
and a non-zero exit before anything starts.

The README's settings table documents every entry of `SPECS`; a test keeps the two in step.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import sys
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


@dataclass(frozen=True)
class FsNode:
    """One FreeSWITCH (or simswitch) Event Socket endpoint."""

    name: str
    host: str
    port: int
    password: str


@dataclass(frozen=True)
class FreeswitchConf:
    """What fs_conf renders into a FreeSWITCH node and what the console's FreeSWITCH
    endpoints (xml_curl, CDR) check."""

    http_secret: str
    http_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    esl_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    external_ip: str
    rtp_start: int
    rtp_end: int
    wss_cert_dir: str | None
    max_sessions: int
    sessions_per_second: int


@dataclass(frozen=True)
class AgentConf:
    """Transfer to agents: presence timings, what agents see, where their phones register."""

    wrap_up_s: int
    max_missed: int
    phone_mask: str
    sip_wss_url: str | None  # None: wss://<the console's host>:7443
    sip_domain: str | None  # None: the WSS URL's host


@dataclass(frozen=True)
class DialogueConf:
    """The AI dialogue: the audio-fork media server, ASR / TTS / LLM defaults, prompt files."""

    media_host: str
    media_port: int
    media_url: str
    fork_subprotocol: str
    asr: str
    funasr_url: str
    stt_url: str
    stt_model: str
    stt_api_key: str
    llm_url: str
    llm_model: str
    llm_api_key: str
    prompts_dir: Path
    tts_voice: str


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str
    redis_embedded: bool
    embedded_redis_port: int
    web_host: str
    web_port: int
    secret_key: str
    fs_nodes: tuple[FsNode, ...]
    simswitch: bool
    simswitch_scenario: Path | None
    admin_user: str
    admin_password: str | None
    recordings_dir: Path
    log_dir: Path
    workers: int
    timezone: str
    log_level: str
    freeswitch: FreeswitchConf
    agents: AgentConf
    dialogue: DialogueConf
    controller_id: str = ""  # names this controller's calls; stable across its restarts
    demo: str = "ask"  # DEMO: offer the demo account on first start (core/demo)
    cpa_detector: str = "none"  # CPA_DETECTOR, `auto` resolved: tonedetect or none

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@dataclass(frozen=True)
class Spec:
    name: str
    default: str
    doc: str


# Order is the README table's order.
SPECS: tuple[Spec, ...] = (
    Spec("DATA_DIR", "./data", "Where the database, logs, recordings and generated secrets live."),
    Spec("DATABASE_URL", "sqlite:///$DATA_DIR/callcentre.db",
         "SQLAlchemy URL. SQLite runs in WAL mode; use postgresql+psycopg://… in production."),
    Spec("REDIS_URL", "(embedded)",
         "Redis for queues, live events and counters. Empty: an embedded Redis is started."),
    Spec("EMBEDDED_REDIS_PORT", "6390", "Loopback port of the embedded Redis."),
    Spec("WEB_HOST", "127.0.0.1", "Console listen address."),
    Spec("WEB_PORT", "5000", "Console listen port."),
    Spec("SECRET_KEY", "(generated)",
         "Session signing key. Empty: generated once and kept in $DATA_DIR/secret_key."),
    Spec("FS_NODES", "(simswitch)",
         "FreeSWITCH Event Socket nodes, `name=host:port:password`, comma-separated. "
         "Empty: one simswitch node on 127.0.0.1:8021."),
    Spec("SIMSWITCH", "auto",
         "Start the FreeSWITCH stand-in: `auto` (when FS_NODES is empty), `yes` or `no`."),
    Spec("SIMSWITCH_SCENARIO", "(built-in)", "Scenario file for simswitch's simulated callees."),
    Spec("CPA_DETECTOR", "auto",
         "Early-media announcement detector the switch runs (空号/关机 …, CPA.md): "
         "`tonedetect` (mod_ring_asr's mod_tonedetect, fs_conf/README.md), `none`; `auto`: "
         "tonedetect on simswitch, none on FreeSWITCH."),
    Spec("DEMO", "ask",
         "The demo account (`run all` with simswitch): `ask` on the first start (yes after "
         "20 s or without a terminal), `yes` (create it when missing) or `no`."),
    Spec("ADMIN_USER", "admin", "Bootstrap administrator created on first start."),
    Spec("ADMIN_PASSWORD", "(generated)",
         "Its password. Empty: generated, printed once and kept in $DATA_DIR/admin_password."),
    Spec("RECORDINGS_DIR", "$DATA_DIR/recordings", "Call recordings."),
    Spec("LOG_DIR", "$DATA_DIR/logs", "One log file per process."),
    Spec("WORKERS", "1", "Number of rq worker processes the launcher starts."),
    Spec("TIMEZONE", "Asia/Shanghai", "Default time zone of new accounts (IANA name)."),
    Spec("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR."),
    Spec("FS_HTTP_SECRET", "(generated)",
         "Password FreeSWITCH sends (HTTP basic auth, user `freeswitch`) to the console's "
         "xml_curl and CDR endpoints. Empty: generated once and kept in $DATA_DIR/fs_http_secret."),
    Spec("FS_HTTP_ALLOW", "127.0.0.1,::1",
         "Addresses or CIDR networks of FreeSWITCH nodes allowed to call those endpoints."),
    Spec("FS_ESL_ALLOW", "127.0.0.1,::1",
         "Addresses or CIDR networks allowed to connect to a node's Event Socket (the "
         "controllers); rendered into its acl.conf.xml."),
    Spec("FS_EXTERNAL_IP", "auto",
         "Public address FreeSWITCH puts in SIP and SDP: an IP, `auto` (its own address), "
         "`auto-nat` (UPnP/NAT-PMP) or `stun:host`."),
    Spec("FS_RTP_START", "16384", "First UDP port of FreeSWITCH's RTP range."),
    Spec("FS_RTP_END", "32768", "Last UDP port of FreeSWITCH's RTP range."),
    Spec("FS_WSS_CERT_DIR", "(FreeSWITCH's certs dir)",
         "Directory on the FreeSWITCH host holding wss.pem (certificate chain and key) for "
         "agents' WebRTC phones."),
    Spec("FS_MAX_SESSIONS", "1000", "FreeSWITCH's limit on simultaneous channels."),
    Spec("FS_SESSIONS_PER_SECOND", "30",
         "FreeSWITCH's limit on new channels per second (keep it under your trunks' CPS)."),
    Spec("AGENT_WRAP_UP_S", "15",
         "Seconds of wrap-up after an agent's call before they are offered the next one."),
    Spec("AGENT_MAX_MISSED", "3",
         "Transfer offers an agent may miss in a row before being set to break (and told why)."),
    Spec("AGENT_PHONE_MASK", "middle",
         "How the screen pop shows the customer's number: `middle` (138****8000), `all` "
         "(all but the last two digits hidden) or `none`."),
    Spec("AGENT_SIP_WSS_URL", "(wss://console host:7443)",
         "SIP-over-WebSocket URL of FreeSWITCH that agents' browser phones register to."),
    Spec("AGENT_SIP_DOMAIN", "(the WSS URL's host)",
         "SIP domain of agents' accounts (sip:<extension>@<domain>)."),
    Spec("MEDIA_LISTEN", "127.0.0.1:8090",
         "host:port of the controller's audio-fork WebSocket server (mod_audio_fork connects)."),
    Spec("MEDIA_URL", "(ws://MEDIA_LISTEN/fork)",
         "The ws:// URL FreeSWITCH is told to stream calls' audio to (uuid_audio_fork)."),
    Spec("AUDIO_FORK_SUBPROTOCOL", "audio.drachtio.org",
         "WebSocket subprotocol mod_audio_fork asks for."),
    Spec("ASR", "scripted",
         "Default speech recogniser: `scripted` (simswitch says the text), `funasr` or "
         "`openai`; a task may override it in its dialogue settings."),
    Spec("FUNASR_URL", "(none)", "ws:// URL of a FunASR runtime server (2-pass protocol)."),
    Spec("STT_URL", "(none)",
         "Base URL of an OpenAI-compatible /v1/audio/transcriptions endpoint."),
    Spec("STT_MODEL", "whisper-1", "Model name sent to that endpoint."),
    Spec("STT_API_KEY", "(none)", "Bearer key for that endpoint."),
    Spec("LLM_URL", "(none)",
         "Base URL of an OpenAI-compatible /v1/chat/completions endpoint for LLM-mode "
         "scripts (DeepSeek, Qwen, vLLM, Ollama …)."),
    Spec("LLM_MODEL", "deepseek-chat", "Model name sent to that endpoint."),
    Spec("LLM_API_KEY", "(none)", "Bearer key for that endpoint."),
    Spec("PROMPTS_DIR", "$DATA_DIR/prompts",
         "Uploaded prompt recordings (8 kHz WAV) and the TTS cache; FreeSWITCH must read it "
         "at the same path."),
    Spec("TTS_VOICE", "cmn", "espeak-ng voice for variable text."),
    Spec("CONTROLLER_ID", "(host name)",
         "Names this controller's calls so that, restarted, it takes back its own live calls "
         "and leaves other controllers' alone. Give each controller sharing a database its own."),
)

SIMSWITCH_NODE = FsNode("sim", "127.0.0.1", 8021, "ClueCon")


def _port(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a port number 1-65535, got {raw!r}") from None
    if not 1 <= value <= 65535:
        raise SettingsError(f"{name}: expected a port number 1-65535, got {raw!r}")
    return value


def _positive_int(name: str, raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{name}: expected a whole number of at least 1, got {raw!r}")
    return int(raw)


def _choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower() if name != "LOG_LEVEL" else raw.strip().upper()
    if value not in choices:
        raise SettingsError(f"{name}: expected one of {', '.join(choices)}, got {raw!r}")
    return value


def parse_fs_nodes(raw: str) -> tuple[FsNode, ...]:
    """Parse `name=host:port:password[,…]`; the password may itself contain ':'."""
    nodes = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, rest = item.partition("=")
        host, _, tail = rest.partition(":")
        port, _, password = tail.partition(":")
        if not (sep and name and host and port and password):
            raise SettingsError(
                f"FS_NODES: expected name=host:port:password, got {item!r}")
        nodes.append(FsNode(name.strip(), host, _port("FS_NODES", port), password))
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise SettingsError(f"FS_NODES: node names must be unique, got {names}")
    return tuple(nodes)


def _database_url(raw: str, data_dir: Path) -> str:
    if not raw:
        return f"sqlite:///{data_dir / 'callcentre.db'}"
    scheme = urlsplit(raw).scheme
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise SettingsError(
            f"DATABASE_URL: expected a sqlite:/// or postgresql+psycopg:// URL, got {raw!r}")
    if scheme in ("postgresql", "postgres"):
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        raw = "postgresql+psycopg" + raw[len(scheme):]
    return raw


def _redis_url(raw: str) -> str:
    if urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
        raise SettingsError(f"REDIS_URL: expected a redis:// URL, got {raw!r}")
    return raw


def _kept_secret(path: Path, nbytes: int) -> str:
    """Read a generated secret from `path`, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def _networks(name: str, raw: str) -> tuple:
    try:
        nets = tuple(ipaddress.ip_network(part.strip(), strict=False)
                     for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(f"{name}: expected addresses or CIDR networks, {exc}") from None
    if not nets:
        raise SettingsError(f"{name}: expected at least one address or network")
    return nets


def _external_ip(raw: str) -> str:
    if raw in ("auto", "auto-nat") or (raw.startswith("stun:") and len(raw) > 5):
        return raw
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise SettingsError(
            f"FS_EXTERNAL_IP: expected an IP, auto, auto-nat or stun:host, got {raw!r}") from None


def _freeswitch(get: Callable[[str, str], str], data_dir: Path) -> FreeswitchConf:
    rtp_start = _port("FS_RTP_START", get("FS_RTP_START", "16384"))
    rtp_end = _port("FS_RTP_END", get("FS_RTP_END", "32768"))
    if rtp_end <= rtp_start:
        raise SettingsError(
            f"FS_RTP_END: must be above FS_RTP_START ({rtp_start}), got {rtp_end}")
    return FreeswitchConf(
        http_secret=get("FS_HTTP_SECRET", "") or _kept_secret(data_dir / "fs_http_secret", 24),
        http_allow=_networks("FS_HTTP_ALLOW", get("FS_HTTP_ALLOW", "127.0.0.1,::1")),
        esl_allow=_networks("FS_ESL_ALLOW", get("FS_ESL_ALLOW", "127.0.0.1,::1")),
        external_ip=_external_ip(get("FS_EXTERNAL_IP", "auto")),
        rtp_start=rtp_start,
        rtp_end=rtp_end,
        wss_cert_dir=get("FS_WSS_CERT_DIR", "") or None,
        max_sessions=_positive_int("FS_MAX_SESSIONS", get("FS_MAX_SESSIONS", "1000")),
        sessions_per_second=_positive_int("FS_SESSIONS_PER_SECOND",
                                          get("FS_SESSIONS_PER_SECOND", "30")),
    )


def _agents(get: Callable[[str, str], str]) -> AgentConf:
    wrap = get("AGENT_WRAP_UP_S", "15")
    if not wrap.isdigit():
        raise SettingsError(f"AGENT_WRAP_UP_S: expected a whole number of seconds, got {wrap!r}")
    wss = get("AGENT_SIP_WSS_URL", "") or None
    if wss is not None and urlsplit(wss).scheme not in ("ws", "wss"):
        raise SettingsError(f"AGENT_SIP_WSS_URL: expected a wss:// or ws:// URL, got {wss!r}")
    return AgentConf(
        wrap_up_s=int(wrap),
        max_missed=_positive_int("AGENT_MAX_MISSED", get("AGENT_MAX_MISSED", "3")),
        phone_mask=_choice("AGENT_PHONE_MASK", get("AGENT_PHONE_MASK", "middle"),
                           ("middle", "all", "none")),
        sip_wss_url=wss,
        sip_domain=get("AGENT_SIP_DOMAIN", "") or None,
    )


def _dialogue(get: Callable[[str, str], str], data_dir: Path,
              sub_dir: Callable[[str, str], Path]) -> DialogueConf:
    listen = get("MEDIA_LISTEN", "127.0.0.1:8090")
    host, sep, port = listen.rpartition(":")
    if not sep or not host:
        raise SettingsError(f"MEDIA_LISTEN: expected host:port, got {listen!r}")
    media_port = _port("MEDIA_LISTEN", port)
    url = get("MEDIA_URL") or f"ws://{'127.0.0.1' if host == '0.0.0.0' else host}:{media_port}/fork"
    if urlsplit(url).scheme not in ("ws", "wss"):
        raise SettingsError(f"MEDIA_URL: expected a ws:// URL, got {url!r}")
    asr = _choice("ASR", get("ASR", "scripted"), ("scripted", "funasr", "openai"))
    if asr == "funasr" and not get("FUNASR_URL"):
        raise SettingsError("FUNASR_URL: needed when ASR is funasr")
    if asr == "openai" and not get("STT_URL"):
        raise SettingsError("STT_URL: needed when ASR is openai")
    return DialogueConf(
        media_host=host, media_port=media_port, media_url=url,
        fork_subprotocol=get("AUDIO_FORK_SUBPROTOCOL", "audio.drachtio.org"),
        asr=asr, funasr_url=get("FUNASR_URL"), stt_url=get("STT_URL"),
        stt_model=get("STT_MODEL", "whisper-1"), stt_api_key=get("STT_API_KEY"),
        llm_url=get("LLM_URL"), llm_model=get("LLM_MODEL", "deepseek-chat"),
        llm_api_key=get("LLM_API_KEY"), prompts_dir=sub_dir("PROMPTS_DIR", "prompts"),
        tts_voice=get("TTS_VOICE", "cmn"))


def generated_admin_password(data_dir: Path) -> str:
    """The bootstrap admin password kept in DATA_DIR when ADMIN_PASSWORD is unset."""
    return _kept_secret(data_dir / "admin_password", 12)


def load_settings(environ: Mapping[str, str] | None = None,
                  env_file: Path | None = None) -> Settings:
    """Build Settings from `environ` (default os.environ) over an optional `.env` file.

    Raises SettingsError naming the first variable with a value we cannot use.
    """
    env_file = env_file or ROOT / ".env"
    values: dict[str, str] = {}
    if env_file.exists():
        values.update({k: v or "" for k, v in dotenv_values(env_file).items()})
    values.update(os.environ if environ is None else environ)

    def get(name: str, default: str = "") -> str:
        return values.get(name, "").strip() or default

    data_dir = Path(get("DATA_DIR", "./data"))
    if not data_dir.is_absolute():
        data_dir = (ROOT / data_dir).resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"DATA_DIR: cannot create {data_dir}: {exc.strerror}") from None

    def sub_dir(name: str, default: str) -> Path:
        path = Path(get(name)) if get(name) else data_dir / default
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(f"{name}: cannot create {path}: {exc.strerror}") from None
        return path

    embedded_port = _port("EMBEDDED_REDIS_PORT", get("EMBEDDED_REDIS_PORT", "6390"))
    redis_raw = get("REDIS_URL")
    fs_nodes = parse_fs_nodes(get("FS_NODES"))
    simswitch_mode = _choice("SIMSWITCH", get("SIMSWITCH", "auto"), ("auto", "yes", "no"))
    simswitch = simswitch_mode == "yes" or (simswitch_mode == "auto" and not fs_nodes)
    scenario = Path(get("SIMSWITCH_SCENARIO")) if get("SIMSWITCH_SCENARIO") else None
    if scenario is not None and not scenario.is_file():
        raise SettingsError(f"SIMSWITCH_SCENARIO: no such file {str(scenario)!r}")
    timezone = get("TIMEZONE", "Asia/Shanghai")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"TIMEZONE: unknown time zone {timezone!r}") from None

    return Settings(
        data_dir=data_dir,
        database_url=_database_url(get("DATABASE_URL"), data_dir),
        redis_url=_redis_url(redis_raw) if redis_raw
        else f"redis://127.0.0.1:{embedded_port}/0",
        redis_embedded=not redis_raw,
        embedded_redis_port=embedded_port,
        web_host=get("WEB_HOST", "127.0.0.1"),
        web_port=_port("WEB_PORT", get("WEB_PORT", "5000")),
        secret_key=get("SECRET_KEY") or _kept_secret(data_dir / "secret_key", 32),
        fs_nodes=fs_nodes or (SIMSWITCH_NODE,),
        simswitch=simswitch,
        simswitch_scenario=scenario,
        admin_user=get("ADMIN_USER", "admin"),
        admin_password=get("ADMIN_PASSWORD") or None,
        recordings_dir=sub_dir("RECORDINGS_DIR", "recordings"),
        log_dir=sub_dir("LOG_DIR", "logs"),
        workers=_positive_int("WORKERS", get("WORKERS", "1")),
        timezone=timezone,
        log_level=_choice("LOG_LEVEL", get("LOG_LEVEL", "INFO"),
                          ("DEBUG", "INFO", "WARNING", "ERROR")),
        freeswitch=_freeswitch(get, data_dir),
        agents=_agents(get),
        dialogue=_dialogue(get, data_dir, sub_dir),
        controller_id=get("CONTROLLER_ID") or socket.gethostname(),
        demo=_choice("DEMO", get("DEMO", "ask"), ("ask", "yes", "no")),
        cpa_detector=_cpa_detector(get("CPA_DETECTOR", "auto"), simswitch),
    )


def _cpa_detector(raw: str, simswitch: bool) -> str:
    value = _choice("CPA_DETECTOR", raw, ("auto", "tonedetect", "none"))
    if value == "auto":
        # simswitch plays mod_tonedetect; a FreeSWITCH has it only when it was installed.
        return "tonedetect" if simswitch else "none"
    return value


@cache
def get_settings() -> Settings:
    """The process-wide settings, loaded once."""
    return load_settings()


def settings_or_exit(loader: Callable[[], Settings] = get_settings) -> Settings:
    """For entry points: load settings or print the problem and exit with status 2."""
    try:
        return loader()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
