"""simswitch: a FreeSWITCH 1.10 stand-in (Event Socket, call model, mod_audio_fork media).

See simswitch/README.md for what it models, what it does not, and the programmatic API.
"""

from simswitch.server import SimSwitch

__all__ = ["SimSwitch"]
