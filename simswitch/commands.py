"""The API commands (``api`` / ``bgapi``): name → function(switch, args) → output text.

Outputs are byte-for-byte those of mod_commands (PROTOCOL.md §4.1; real captures 01/02).
"""

import json
import time

from simswitch.channel import CAUSE_CODES
from simswitch.sofia import profile_command
from simswitch.switch import VERSION

NO_CHANNEL = "-ERR No such channel!\n"


class Commands:
    def __init__(self, switch, forks, recorder):
        self.switch = switch
        self.forks = forks
        self.recorder = recorder
        self.table = {
            "status": self.status,
            "version": lambda a: f"FreeSWITCH Version {VERSION}~64bit ( 64bit)\n",
            "originate": self.switch.originate,
            "uuid_kill": self.uuid_kill,
            "uuid_answer": self.uuid_answer,
            "uuid_pre_answer": self.uuid_pre_answer,
            "uuid_transfer": self.uuid_transfer,
            "uuid_bridge": self.uuid_bridge,
            "uuid_broadcast": self.uuid_broadcast,
            "uuid_break": self.uuid_break,
            "uuid_record": self.uuid_record,
            "uuid_setvar": self.uuid_setvar,
            "uuid_getvar": self.uuid_getvar,
            "uuid_send_dtmf": self.uuid_send_dtmf,
            "uuid_recv_dtmf": self.uuid_recv_dtmf,
            "uuid_exists": lambda a: "true" if self.switch.get(a.strip()) else "false",
            "uuid_audio_fork": self.forks.api,
            "show": self.show,
            "hupall": self.hupall,
            "sofia": self.sofia,
            "reloadxml": lambda a: "+OK [Success]\n\n",
            "module_exists": lambda a: "true" if a.strip() in ("mod_audio_fork", "mod_sofia", "mod_commands", "mod_event_socket", "mod_json_cdr", "mod_loopback", "mod_dptools") else "false",
            "global_getvar": lambda a: {"domain": "127.0.0.1", "hostname": self.switch.hostname}.get(a.strip(), ""),
            "hostname": lambda a: self.switch.hostname,
        }

    def execute(self, command: str, args: str) -> str | None:
        """Output of ``command``; None when no such command exists."""
        func = self.table.get(command.lower())
        return None if func is None else func(args)

    # --- system ------------------------------------------------------------------------------
    def status(self, _args: str) -> str:
        sw = self.switch
        return (
            f"UP {sw.uptime_text()}\n"
            f"FreeSWITCH (Version {VERSION}  64bit) is ready\n"
            f"{sw.sessions_since_startup} session(s) since startup\n"
            f"{len(sw.sessions)} session(s) - peak {sw.peak}, last 5min {sw.peak} \n"
            "0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"
            "5000 session(s) max\n"
            "min idle cpu 0.00/99.00\n"
            "Current Stack Size/Max 240K/8192K\n"
        )

    def hupall(self, args: str) -> str:
        parts = args.split()
        cause = parts[0] if parts else "MANAGER_REQUEST"
        var, value = (parts[1], parts[2]) if len(parts) >= 3 else (None, None)
        for sess in list(self.switch.sessions.values()):
            if var is None or sess.ch.variables.get(var) == value:
                self.switch.hangup(sess.ch, cause)
        return "+OK hupall\n"

    def sofia(self, args: str) -> str:
        parts = args.split()
        gateways = self.switch.gateways
        if parts[:1] == ["profile"]:
            return profile_command(gateways, parts[1:])
        if parts[:1] == ["status"] and len(parts) >= 3 and parts[1] == "gateway":
            gw = gateways.find(parts[2])
            if gw is None:
                return "Invalid Gateway!\n"
            return (
                "=" * 97 + "\n"
                f"Name    \texternal::{parts[2]}\n"
                f"Profile \texternal\n"
                f"Scheme  \tDigest\n"
                f"Proxy   \tsip:{gw.proxy}\n"
                f"Status  \t{'UP' if gw.state == 'REGED' else 'DOWN'}\n"
                f"State   \t{gw.state}\n" + "=" * 97 + "\n"
            )
        if parts[:1] == ["status"] or not parts:
            line = "=" * 97 + "\n"
            rows = [
                f"{'Name':>25}\t{'Type':>7}\t{'Data':>42}\tState\n",
                line,
                f"{'external':>25}\t{'profile':>7}\t{'sip:mod_sofia@127.0.0.1:5080':>42}\tRUNNING (0)\n",
            ]
            for gw in gateways.running:
                rows.append(f"{'external::' + gw.name:>25}\t{'gateway':>7}\t{'sip:' + gw.proxy:>42}\t{gw.state}\n")
            rows += [
                f"{'internal':>25}\t{'profile':>7}\t{'sip:mod_sofia@127.0.0.1:5060':>42}\tRUNNING (0)\n",
                line,
                "2 profiles 0 aliases\n",
            ]
            return "".join(rows)
        return "-ERR Usage: sofia status|gateway …\n"

    # --- channel listing ---------------------------------------------------------------
    def _rows(self) -> list:
        rows = []
        for sess in self.switch.sessions.values():
            ch = sess.ch
            codec, rate, bits = ch.codec() if ch.has_media else ("", "", "")
            created = ch.created
            rows.append(
                {
                    "uuid": ch.uuid,
                    "direction": "outbound",
                    "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created)),
                    "created_epoch": str(int(created)),
                    "name": ch.name,
                    "state": ch.state,
                    "cid_name": "Outbound Call" if ch.cid_flipped else ch.orig_cid_name,
                    "cid_num": ch.destination if ch.cid_flipped else ch.orig_cid_number,
                    "ip_addr": ch.network_addr,
                    "dest": ch.destination,
                    "application": ch.variables.get("current_application", ""),
                    "application_data": ch.variables.get("current_application_data", ""),
                    "dialplan": "xml",
                    "context": ch.context,
                    "read_codec": codec,
                    "read_rate": rate,
                    "read_bit_rate": bits,
                    "write_codec": codec,
                    "write_rate": rate,
                    "write_bit_rate": bits,
                    "secure": "",
                    "hostname": self.switch.hostname,
                    "presence_id": "",
                    "presence_data": "",
                    "accountcode": "",
                    "callstate": ch.callstate,
                    "callee_name": ch.orig_cid_name if ch.cid_flipped else "",
                    "callee_num": ch.orig_cid_number if ch.cid_flipped else "",
                    "callee_direction": "RECV" if ch.cid_flipped else "",
                    "call_uuid": ch.uuid,
                    "sent_callee_name": "",
                    "sent_callee_num": "",
                    "initial_cid_name": ch.orig_cid_name,
                    "initial_cid_num": ch.orig_cid_number,
                    "initial_ip_addr": ch.network_addr,
                    "initial_dest": ch.destination,
                    "initial_dialplan": "xml",
                    "initial_context": ch.context,
                }
            )
        return rows

    def show(self, args: str) -> str:
        parts = args.split()
        what = parts[0].lower() if parts else ""
        if what not in ("channels", "calls"):
            return "-USAGE: show channels|calls [count] [as json]\n"
        rows = self._rows()
        if what == "calls":
            # A call is a bridged pair; an unbridged leg is a call of its own.
            seen, calls = set(), []
            for r in rows:
                sess = self.switch.sessions[r["uuid"]]
                other = sess.ch.other
                if r["uuid"] in seen:
                    continue
                seen.add(r["uuid"])
                if other is not None:
                    seen.add(other.uuid)
                calls.append(r)
            rows = calls
        if "count" in parts:
            return f"\n{len(rows)} total.\n"
        if parts[-2:] == ["as", "json"]:
            if not rows:
                return '{"row_count": 0}\n'
            return json.dumps({"row_count": len(rows), "rows": rows}, ensure_ascii=False, separators=(",", ":")) + "\n"
        if not rows:
            return "uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,application,application_data,dialplan,context,read_codec,read_rate,read_bit_rate,write_codec,write_rate,write_bit_rate,secure,hostname,presence_id,presence_data,accountcode,callstate,callee_name,callee_num,callee_direction,call_uuid,sent_callee_name,sent_callee_num,initial_cid_name,initial_cid_num,initial_ip_addr,initial_dest,initial_dialplan,initial_context\n\n0 total.\n"
        header = ",".join(rows[0].keys())
        lines = [",".join(str(v) for v in r.values()) for r in rows]
        return header + "\n" + "\n".join(lines) + f"\n\n{len(rows)} total.\n"

    # --- uuid_* -----------------------------------------------------------------------------
    def _sess(self, args: str):
        parts = args.split()
        return (self.switch.get(parts[0]) if parts else None), parts

    def uuid_kill(self, args: str) -> str:
        sess, parts = self._sess(args)
        if sess is None:
            return NO_CHANNEL
        cause = parts[1] if len(parts) > 1 else "NORMAL_CLEARING"
        if cause.isdigit():
            cause = next((n for n, c in CAUSE_CODES.items() if c == int(cause)), "NORMAL_CLEARING")
        self.switch.hangup(sess.ch, cause)
        return "+OK\n"

    def uuid_answer(self, args: str) -> str:
        sess, _ = self._sess(args)
        if sess is None:
            return NO_CHANNEL
        self.switch.answer(sess.ch)
        return "+OK\n"

    def uuid_pre_answer(self, args: str) -> str:
        sess, _ = self._sess(args)
        if sess is None:
            return NO_CHANNEL
        self.switch.pre_answer(sess.ch)
        return "+OK\n"

    def uuid_transfer(self, args: str) -> str:
        sess, parts = self._sess(args)
        if sess is None:
            return NO_CHANNEL
        rest = parts[1:]
        if rest and rest[0] in ("-bleg", "-both"):
            rest = rest[1:]
        if not rest:
            return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
        dialplan = rest[1] if len(rest) > 1 else "XML"
        context = rest[2] if len(rest) > 2 else "default"
        self.switch.transfer(sess, rest[0], dialplan, context)
        return "+OK\n"

    def uuid_bridge(self, args: str) -> str:
        parts = args.split()
        if len(parts) < 2:
            return "-USAGE: <uuid> <other_uuid>\n"
        a, b = self.switch.get(parts[0]), self.switch.get(parts[1])
        if a is None or b is None:
            return "-ERR Invalid uuid\n"
        self.switch.uuid_bridge(a, b)
        return f"+OK {parts[1]}\n"

    def uuid_broadcast(self, args: str) -> str:
        sess, parts = self._sess(args)
        if sess is None or len(parts) < 2:
            return "-ERR invalid uuid\n" if sess is None else "-USAGE: <uuid> <path> [aleg|bleg|both]\n"
        target = parts[1]
        if "::" in target:
            app, _, arg = target.partition("::")
            sess.enqueue(app, arg)
        else:
            sess.enqueue("playback", target)
        return "+OK Message sent\n"

    def uuid_break(self, args: str) -> str:
        sess, parts = self._sess(args)
        if sess is None:
            return NO_CHANNEL
        sess.break_playback(flush=len(parts) > 1 and parts[1] == "all")
        return "+OK\n"

    def uuid_record(self, args: str) -> str:
        parts = args.split()
        if len(parts) < 3:
            return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
        sess = self.switch.get(parts[0])
        if sess is None:
            return "-ERR Cannot locate session!\n"
        action, path = parts[1].lower(), parts[2]
        if action == "start":
            limit = float(parts[3]) if len(parts) > 3 and parts[3].isdigit() and int(parts[3]) > 0 else None
            ok = self.recorder.start(sess, path, limit)
            return "+OK Success\n" if ok else "-ERR Cannot record session!\n"
        if action == "stop":
            return "+OK Success\n" if self.recorder.stop(sess, path) else "-ERR Cannot record session!\n"
        if action in ("mask", "unmask"):
            return "+OK Success\n"
        return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"

    def uuid_setvar(self, args: str) -> str:
        parts = args.split(" ", 2)
        sess = self.switch.get(parts[0]) if parts and parts[0] else None
        if sess is None:
            return NO_CHANNEL
        if len(parts) < 2 or not parts[1]:
            return "-ERR No variable specified\n"
        sess.ch.set_var(parts[1], parts[2] if len(parts) > 2 and parts[2] != "" else None)
        return "+OK\n"

    def uuid_getvar(self, args: str) -> str:
        sess, parts = self._sess(args)
        if sess is None:
            return NO_CHANNEL
        if len(parts) < 2:
            return "-ERR No variable supplied\n"
        return sess.ch.variables.get(parts[1], "_undef_")

    def uuid_send_dtmf(self, args: str) -> str:
        """DTMF sent towards the callee; the modelled far end echoes nothing back."""
        sess, parts = self._sess(args)
        if sess is None or len(parts) < 2:
            return "-ERR no such session\n" if sess is None else "-USAGE: <uuid> <dtmf_data>\n"
        sess.ch.set_var("digits_dialed", parts[1])
        return f"+OK {sess.ch.uuid} sent DTMF {parts[1]}.\n"

    def uuid_recv_dtmf(self, args: str) -> str:
        """DTMF as if received from the callee: one DTMF event per digit."""
        sess, parts = self._sess(args)
        if sess is None or len(parts) < 2:
            return "-ERR no such session\n" if sess is None else "-USAGE: <uuid> <dtmf_data>\n"
        for digit in parts[1]:
            if digit.isalnum() or digit in "*#":
                self.switch.dtmf(sess.ch, digit, source="APP")
        return f"+OK {sess.ch.uuid} received DTMF {parts[1]}.\n"
