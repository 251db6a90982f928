"""Where a Chinese number is from and which carrier it was issued to (T6), in Chinese, from
the `phonenumbers` package's offline data: 广东省深圳市 / 中国移动.

A number import looks up 250,000 numbers, so results are cached per prefix: a mobile's
region and carrier follow from its first 7 digits (号段), a landline's region from its area
code (landlines have no carrier). Ported numbers keep the carrier they were issued to.

The lookup reads the package's prefix tables (GEOCODE_DATA, CARRIER_DATA: prefix → {locale:
name}) the way its geocoder and carrier modules do — longest prefix with a Chinese name
wins — without building a PhoneNumber and formatting it for every prefix, which cost about
15 µs each: 3 s of an import of random numbers. tests/core/test_phone_info.py checks the
two agree.
"""

from __future__ import annotations

from functools import lru_cache

from phonenumbers.carrierdata import CARRIER_DATA
from phonenumbers.geodata import GEOCODE_DATA

LANG = "zh"  # no English fallback, as phonenumbers does for Chinese
COUNTRY_CODE = "86"


def prefix_of(phone: str) -> str | None:
    """The part of a canonical number (core.phones.normalise) that decides its region and
    carrier: "1380013" for 13800138000, "755" for 075512345678, "10" for 01012345678; None
    for anything that is neither (fast imports store numbers unchecked)."""
    if not phone.isdigit():
        return None
    if len(phone) == 11 and phone[0] == "1":
        return phone[:7]
    if 10 <= len(phone) <= 12 and phone[0] == "0":
        # 010 and 02x have two-digit area codes, every other area three (see core.phones).
        return phone[1:3] if phone[1] in "12" else phone[1:4]
    return None


def _longest(data: dict[str, dict[str, str]], digits: str) -> str | None:
    for end in range(len(digits), len(COUNTRY_CODE), -1):
        entry = data.get(digits[:end])
        if entry and (name := entry.get(LANG)):
            return name
    return None


@lru_cache(maxsize=200_000)
def _describe(prefix: str) -> tuple[str | None, str | None]:
    # The tables are keyed by prefixes of the international number, so the prefix alone
    # finds the entry the whole number would.
    digits = COUNTRY_CODE + prefix
    carrier = _longest(CARRIER_DATA, digits) if prefix[0] == "1" else None
    return _longest(GEOCODE_DATA, digits), carrier


def lookup(phone: str) -> tuple[str | None, str | None]:
    """(region, carrier) of a canonical number, each None when unknown."""
    prefix = prefix_of(phone)
    return _describe(prefix) if prefix else (None, None)
