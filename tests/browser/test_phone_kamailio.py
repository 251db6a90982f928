"""Optional: the workbench's phone against a real SIP-over-WebSocket server — Debian's
Kamailio (`apt-get install kamailio kamailio-websocket-modules`) as registrar with digest
authentication. The page registers with the agent's console credentials, a SIP call sent
to the agent's extension rings in the browser, is answered there (fake microphone), muted,
and hung up from the page. Skipped when kamailio is not installed."""

import re
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from tests import factories as f
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.phone_helpers import FAKE_MEDIA, agent_rows, login
from tests.conftest import free_port

pytestmark = pytest.mark.browser
KAMAILIO = shutil.which("kamailio") or (
    "/usr/sbin/kamailio" if shutil.which("/usr/sbin/kamailio") else None)
MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"

CONFIG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
listen=tcp:127.0.0.1:{ws_port}
listen=udp:127.0.0.1:{udp_port}
tcp_accept_no_cl=yes
auto_aliases=no
mpath="{modules}"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "xhttp.so"
loadmodule "websocket.so"
loadmodule "nathelper.so"
modparam("nathelper", "received_avp", "$avp(RECEIVED)")
modparam("registrar", "received_avp", "$avp(RECEIVED)")

request_route {{
    if (nat_uac_test(64)) {{
        force_rport();
        if (is_method("REGISTER")) {{ fix_nated_register(); }} else {{ add_contact_alias(); }}
    }}
    if (is_method("REGISTER")) {{
        if (!pv_www_authenticate("$td", "{password}", "0")) {{
            www_challenge("$td", "0");
            exit;
        }}
        save("location");
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            # JsSIP's Contact is a GRUU (sip:1001@host;gr=…): find its registration
            if ($(ru{{uri.param,gr}}) != "") {{ lookup("location"); }}
            handle_ruri_alias();
            t_relay();
            exit;
        }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("INVITE")) {{ record_route(); }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    handle_ruri_alias();
    t_relay();
}}
event_route[xhttp:request] {{
    if ($hdr(Upgrade) =~ "websocket" && $hdr(Connection) =~ "Upgrade" && $rm =~ "GET") {{
        if (ws_handle_handshake()) {{ exit; }}
    }}
    xhttp_reply("404", "Not Found", "", "");
}}
"""

# A WebRTC-shaped offer (ICE, DTLS fingerprint, rtcp-mux) that Chromium accepts.
SDP = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
    "m=audio 40000 UDP/TLS/RTP/SAVPF 0", "c=IN IP4 127.0.0.1", "a=rtcp:40000 IN IP4 127.0.0.1",
    "a=ice-ufrag:cctest", "a=ice-pwd:cctestcctestcctestcctest",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:actpass", "a=mid:0",
    "a=sendrecv", "a=rtcp-mux", "a=rtpmap:0 PCMU/8000",
    "a=candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host", ""])


@pytest.fixture
def kamailio(tmp_path):
    if KAMAILIO is None:
        pytest.skip("kamailio is not installed (apt-get install kamailio "
                    "kamailio-websocket-modules)")
    ws_port, udp_port = free_port(), free_port()
    cfg = tmp_path / "kamailio.cfg"
    cfg.write_text(CONFIG.format(ws_port=ws_port, udp_port=udp_port, modules=MODULES,
                                 password="sip-pw-1001"))
    proc = subprocess.Popen([KAMAILIO, "-DD", "-E", "-f", str(cfg), "-P",
                             str(tmp_path / "kamailio.pid"), "-Y", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", ws_port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("kamailio did not start: " + proc.stderr.read().decode()[-2000:])
            time.sleep(0.1)
    yield {"ws": f"ws://127.0.0.1:{ws_port}", "udp": ("127.0.0.1", udp_port)}
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def subprocess_env(subprocess_env, kamailio):
    return {**subprocess_env, "AGENT_SIP_WSS_URL": kamailio["ws"]}


@pytest.fixture
def agent(console, subprocess_env):
    yield from agent_rows(console, subprocess_env)


class Uac:
    """Just enough of a SIP user agent over UDP to call the agent and take the answer."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(1.0)
        self.port = self.sock.getsockname()[1]
        self.call_id, self.tag = uuid.uuid4().hex, uuid.uuid4().hex[:8]

    def send(self, text):
        self.sock.sendto(text.encode(), self.proxy)

    def via(self):
        return f"SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex};rport"

    def invite(self, ext, call_uuid):
        self.send(
            f"INVITE sip:{ext}@127.0.0.1 SIP/2.0\r\nVia: {self.via()}\r\nMax-Forwards: 70\r\n"
            f"From: <sip:4000@127.0.0.1>;tag={self.tag}\r\nTo: <sip:{ext}@127.0.0.1>\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:4000@127.0.0.1:{self.port}>\r\nX-CC-Call: {call_uuid}\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}")

    def receive(self, predicate, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(65535).decode(errors="replace")
            except TimeoutError:
                continue
            if predicate(data):
                return data
        raise AssertionError("no such SIP message arrived")

    def ack(self, ok):
        head = ok.split("\r\n\r\n")[0]
        to = re.search(r"^To: ([^\r\n]+)", head, re.M | re.I).group(1)
        contact = re.search(r"^Contact: [^<\r\n]*<([^>]+)>", head, re.M | re.I).group(1)
        routes = re.findall(r"^Record-Route: ([^\r\n]+)", head, re.M | re.I)
        route_set = [r.strip() for line in reversed(routes) for r in reversed(line.split(","))]
        route = "".join(f"Route: {r}\r\n" for r in route_set)
        self.send(f"ACK {contact} SIP/2.0\r\nVia: {self.via()}\r\nMax-Forwards: 70\r\n{route}"
                  f"From: <sip:4000@127.0.0.1>;tag={self.tag}\r\nTo: {to}\r\n"
                  f"Call-ID: {self.call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")

    def answer_bye(self, bye):
        head = bye.split("\r\n\r\n")[0]
        keep = [line for line in head.split("\r\n")[1:]
                if line.split(":")[0].lower() in ("via", "from", "to", "call-id", "cseq")]
        self.send("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n")


def test_phone_registers_answers_and_hangs_up_through_kamailio(browser, console, agent,
                                                                kamailio):
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed")
    media = browser.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS + FAKE_MEDIA)
    uac = Uac(kamailio["udp"])
    try:
        context = media.new_context(locale="zh-CN", permissions=["microphone"])
        page = context.new_page()
        page.set_default_timeout(20000)
        login(page, console, agent["username"], f.PASSWORD)
        page.goto(console["url"] + "/agents/phone")
        page.wait_for_function(
            "document.getElementById('reg-status').dataset.registered === '1'")
        assert page.locator("#reg-status").inner_text() == "已注册"
        assert not page.locator("#phone-error").is_visible()

        uac.invite("1001", agent["call_uuid"])
        uac.receive(lambda m: m.startswith("SIP/2.0 180"))
        page.wait_for_function("document.getElementById('call-state').textContent === '来电'")
        assert page.locator("#btn-answer").is_enabled()
        page.click("#btn-answer")
        ok = uac.receive(lambda m: m.startswith("SIP/2.0 200") and "INVITE" in m)
        assert "a=fingerprint" in ok  # a real WebRTC answer from the browser
        uac.ack(ok)
        page.wait_for_function("document.getElementById('call-state').textContent === '通话中'")
        page.click("#btn-mute")
        assert page.locator("#btn-mute span").inner_text() == "取消静音"
        page.click("#btn-hangup")
        bye = uac.receive(lambda m: m.startswith("BYE "))
        uac.answer_bye(bye)
        page.wait_for_function(
            "document.getElementById('call-state').textContent === '通话已结束'")
        context.close()
    finally:
        media.close()
        uac.sock.close()
