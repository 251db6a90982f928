"""CDR delivery as mod_json_cdr does it: one JSON document per leg, POSTed when the leg is
destroyed, retried on failure.

HTTP runs in gevent's thread pool (urllib is blocking), so no monkey-patching is needed.
"""

import json
import logging
import urllib.error
import urllib.request

import gevent

log = logging.getLogger(__name__)


def build_cdr(ch, core_uuid: str, switchname: str) -> dict:
    """The mod_json_cdr document for a finished channel (subset: see README)."""
    def micros(t):
        return str(int(t * 1_000_000)) if t else "0"

    return {
        "core-uuid": core_uuid,
        "switchname": switchname,
        "channel_data": {
            "state": ch.state,
            "direction": "outbound",
            "state_number": "11",
            "flags": "",
            "caps": "",
        },
        "variables": dict(ch.variables),
        "callflow": [
            {
                "dialplan": "XML",
                "profile_index": "1",
                "caller_profile": {
                    "username": "",
                    "dialplan": "XML",
                    "caller_id_name": ch.orig_cid_name,
                    "ani": ch.orig_cid_number,
                    "caller_id_number": ch.orig_cid_number,
                    "network_addr": ch.network_addr,
                    "destination_number": ch.destination,
                    "uuid": ch.uuid,
                    "source": "src/switch_ivr_originate.c",
                    "context": ch.context,
                    "chan_name": ch.name,
                },
                "times": {
                    "created_time": micros(ch.created),
                    "profile_created_time": micros(ch.created),
                    "progress_time": micros(ch.progress),
                    "progress_media_time": micros(ch.progress_media),
                    "answered_time": micros(ch.answered),
                    "bridged_time": micros(ch.bridged),
                    "hangup_time": micros(ch.hungup),
                    "transfer_time": micros(ch.transferred),
                },
            }
        ],
    }


class CdrPoster:
    """POSTs CDRs to ``url``; ``retries`` extra attempts ``delay`` simulated seconds apart."""

    def __init__(self, url: str, clock, core_uuid: str, switchname: str, retries: int = 3, delay: float = 5.0, timeout: float = 10.0):
        self.url = url
        self.clock = clock
        self.core_uuid = core_uuid
        self.switchname = switchname
        self.retries = retries
        self.delay = delay
        self.timeout = timeout
        self.delivered = 0
        self.failed: list = []  # CDRs given up on (mod_json_cdr writes them to its err-log-dir)
        self._pending = set()

    def submit(self, ch) -> None:
        """Queue a CDR for ``ch`` (already hung up); delivery runs in its own greenlet."""
        doc = build_cdr(ch, self.core_uuid, self.switchname)
        g = gevent.spawn(self._deliver, ch.uuid, json.dumps(doc, ensure_ascii=False).encode("utf-8"))
        self._pending.add(g)
        g.link(self._pending.discard)

    def _post(self, body: bytes) -> int:
        req = urllib.request.Request(self.url, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def _deliver(self, uuid: str, body: bytes) -> None:
        pool = gevent.get_hub().threadpool
        for attempt in range(self.retries + 1):
            try:
                status = pool.spawn(self._post, body).get(timeout=self.timeout + 1)
                if 200 <= status < 300:
                    self.delivered += 1
                    return
                log.warning("CDR %s: HTTP %s (attempt %d)", uuid, status, attempt + 1)
            except (OSError, urllib.error.URLError, gevent.Timeout) as exc:
                log.warning("CDR %s: %s (attempt %d)", uuid, exc, attempt + 1)
            if attempt < self.retries:
                self.clock.sleep(self.delay)
        self.failed.append((uuid, body))
        log.error("CDR %s: given up after %d attempts", uuid, self.retries + 1)

    def drain(self, timeout: float) -> None:
        """Wait for pending deliveries (used at shutdown and by tests)."""
        gevent.joinall(list(self._pending), timeout=timeout)
