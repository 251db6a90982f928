"""mod_sofia's gateways as simswitch models them, and `sofia profile <name> killgw|rescan`.

The scenario's `gateways` stand for sofia.conf (what mod_xml_curl would serve); the running
gateways are what `sofia status` lists and what `sofia/gateway/<name>/…` dials through. As
in mod_sofia 1.10 (mod_sofia.c `cmd_profile`, sofia_reg.c, sofia.c `parse_gateways`):

* `killgw <name>` marks a gateway deleted: from then on it cannot be found (dialling through
  it fails with INVALID_GATEWAY, `sofia status gateway` says `Invalid Gateway!`), but
  `sofia status` still lists it until the profile's gateway check (about once a second)
  removes it — a registered one after one more check, for its unregistration. Gateways are
  looked up by name across profiles, so any profile's `killgw` finds it.
* `rescan` reads the configuration again (the scenario file, when simswitch was started from
  one) and adds every configured gateway that has no live, undeleted namesake; it never
  changes or removes a gateway it already runs. That is why a changed gateway needs killgw,
  then rescan.

Not modelled: registration (a gateway gets its scenario `state` at once), the
sofia::gateway_add / gateway_delete events, the other `sofia profile` commands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gevent

PROFILES = ("external", "internal")
GATEWAY_PROFILE = "external"  # the scenario's gateways are trunks: the external profile's
CHECK_S = 1.0  # sofia_reg_check_gateway runs about once a second per profile


@dataclass
class Gateway:
    name: str
    proxy: str
    state: str  # REGED, NOREG, …
    deleted: bool = False


class Gateways:
    """The running gateways. `config()` returns the configured ones ({name: {"proxy",
    "state"}}) and raises ValueError when the configuration cannot be read."""

    def __init__(self, clock, config: Callable[[], dict]):
        self.clock = clock
        self.config = config
        # Newest first, as mod_sofia links a new gateway in front of the profile's list.
        self.running: list[Gateway] = []
        self._add_configured(config())

    def find(self, name: str) -> Gateway | None:
        """The usable gateway of that name (sofia_reg_find_gateway: deleted ones are not)."""
        return next((g for g in self.running if g.name == name and not g.deleted), None)

    def kill(self, name: str) -> str:
        if name == "_all_":
            for gateway in self.running:
                self._delete(gateway)
            return "+OK every gateway marked for deletion.\n"
        gateway = self.find(name)
        if gateway is None:
            return "-ERR no such gateway.\n"
        self._delete(gateway)
        return "+OK gateway marked for deletion.\n"

    def rescan(self, profile: str) -> str:
        try:
            configured = self.config()
        except ValueError:
            return f"Reload XML [Success]\n-ERR cannot find config for profile {profile}\n"
        if profile == GATEWAY_PROFILE:
            self._add_configured(configured)
        return "Reload XML [Success]\n+OK scan complete\n"

    def _add_configured(self, configured: dict) -> None:
        for name, conf in configured.items():
            if self.find(name) is None:  # "Ignoring duplicate gateway" otherwise
                self.running.insert(0, Gateway(name, conf["proxy"], conf["state"]))

    def _delete(self, gateway: Gateway) -> None:
        if gateway.deleted:
            return
        gateway.deleted = True
        # Unregistering (UNREGISTER → NOREG) takes one check, the removal the next.
        checks = 1 if gateway.state == "NOREG" else 2
        gevent.spawn(self._remove_later, gateway, checks * CHECK_S)

    def _remove_later(self, gateway: Gateway, seconds: float) -> None:
        self.clock.sleep(seconds)
        gateway.state = "NOREG"
        if gateway in self.running:
            self.running.remove(gateway)


def profile_command(gateways: Gateways, argv: list[str]) -> str:
    """`sofia profile <argv…>`, answered as mod_sofia's cmd_profile answers."""
    if len(argv) < 2:
        return "Invalid Args!\n"
    name, command = argv[0], argv[1].lower()
    if name not in PROFILES:
        return f"Invalid Profile [{name}]"  # sic: no newline
    if command == "killgw":
        if len(argv) < 3:
            return "-ERR missing gw name\n"
        return gateways.kill(argv[2])
    if command == "rescan":
        return gateways.rescan(name)
    return "-ERR Unknown command!\n"
