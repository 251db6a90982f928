"""Signed, expiring public links to one call (FEATURES.md R3).

Stateless: the token carries the call id and its expiry, signed with the app's SECRET_KEY
under a salt of its own (so no other signed value of the app — the session, say — can pass
as a share, nor a share as one of them). Nobody can stretch a link or point it at another
call; the only way to withdraw every link at once is a new SECRET_KEY."""

from __future__ import annotations

from datetime import UTC, datetime

from itsdangerous import BadData, URLSafeSerializer

SALT = "call-detail.share"
DAYS = (1, 7, 30)  # the lifetimes offered in the console


class ShareInvalid(Exception):
    """The token was not made by this app (tampered, truncated, another key or salt)."""


class ShareExpired(Exception):
    """A genuine token whose time is over; `until` says when it ended."""

    def __init__(self, until: datetime):
        super().__init__(until.isoformat())
        self.until = until


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT)


def make_token(secret: str, call_id: int, expires_at: datetime) -> str:
    """A URL-safe token opening call `call_id` until `expires_at` (aware datetime)."""
    return _serializer(secret).dumps({"call": call_id, "until": int(expires_at.timestamp())})


def read_token(secret: str, token: str, now: datetime) -> tuple[int, datetime]:
    """(call id, expiry) of a token made by `make_token` with `secret`.

    Raises ShareInvalid when the signature or payload is wrong, ShareExpired when it is
    genuine but `now` is past its expiry (checked only after the signature, so a forged
    token can never reach the "expired" answer)."""
    try:
        data = _serializer(secret).loads(token)
    except BadData as exc:
        raise ShareInvalid(str(exc)) from None
    if not (isinstance(data, dict) and isinstance(data.get("call"), int)
            and isinstance(data.get("until"), int)):
        raise ShareInvalid("unexpected payload")
    until = datetime.fromtimestamp(data["until"], UTC)
    if until <= now:
        raise ShareExpired(until)
    return data["call"], until
