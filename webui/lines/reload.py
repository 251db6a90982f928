"""What FreeSWITCH must do after a line changes, and the Redis notice that says so.

FreeSWITCH asks the console for its gateways (mod_xml_curl, sofia.conf) only when the
external profile is scanned: `sofia profile external rescan` adds gateways it does not have
yet, and a gateway it already has keeps its old settings until
`sofia profile external killgw <name>` removes it. Caller IDs, concurrency and the inbound
DID are not part of the gateway (the controller and the inbound dialplan read them from the
database), so changing only those needs nothing from FreeSWITCH.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import redis

from core.models import Line
from core.redis_conn import GATEWAYS_CHANNEL
from fs_conf.gateways import Gateway, GatewayError, gateway_from_line

log = logging.getLogger(__name__)

PROFILE = "external"  # the profile trunks live on (fs_conf/templates/sip_profiles)


@dataclass(frozen=True)
class Served:
    """A gateway as the nodes get it: its settings and which node (None: every node)."""

    gateway: Gateway
    fs_node: str | None


def served(line: Line) -> Served | None:
    """What node_gateways serves for `line`, or None when it serves nothing (disabled, or a
    value FreeSWITCH cannot use)."""
    if not line.enabled:
        return None
    try:
        return Served(gateway_from_line(line), line.fs_node)
    except GatewayError:
        return None


@dataclass(frozen=True)
class Reload:
    """Kill the gateway that was served (`kill`), then rescan where the new one is served
    (`rescan`). Both None: FreeSWITCH needs nothing."""

    kill: Served | None = None
    rescan: Served | None = None

    @property
    def needed(self) -> bool:
        return self.kill is not None or self.rescan is not None

    def commands(self) -> list[tuple[str | None, str]]:
        """(node or None for every node, fs_cli command), in the order to run them."""
        out = []
        if self.kill:
            out.append((self.kill.fs_node,
                        f"sofia profile {PROFILE} killgw {self.kill.gateway.name}"))
        if self.rescan:
            out.append((self.rescan.fs_node, f"sofia profile {PROFILE} rescan"))
        return out

    def notice(self, line_id: int) -> dict:
        return {
            "line_id": line_id,
            "kill": self.kill and {"gateway": self.kill.gateway.name,
                                   "fs_node": self.kill.fs_node},
            "rescan": self.rescan and {"fs_node": self.rescan.fs_node},
        }


def reload_for(before: Served | None, after: Served | None) -> Reload:
    """The FreeSWITCH work for a line that went from `before` to `after` (None: not served,
    e.g. created, deleted, disabled)."""
    if before == after:
        return Reload()
    return Reload(kill=before, rescan=after)


def publish_reload(conn: redis.Redis, line_id: int, reload: Reload) -> bool:
    """Tell controllers about `reload` when there is something to do. The page shows the same
    commands to run by hand, so a Redis failure only logs."""
    if not reload.needed:
        return False
    try:
        conn.publish(GATEWAYS_CHANNEL, json.dumps(reload.notice(line_id)))
        return True
    except redis.RedisError as exc:
        log.warning("could not publish the gateway change of line %s: %s", line_id, exc)
        return False
