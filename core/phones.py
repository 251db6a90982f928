"""Chinese phone numbers: normalise what people type into one canonical form.

Mobile numbers become 11 digits (13812345678); landlines keep their trunk prefix and area
code (01012345678, 075512345678). Anything else is rejected with a reason.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-().]")
_MOBILE = re.compile(r"1[3-9]\d{9}")
# Beijing, Shanghai, Tianjin, Chongqing and the 02x cities use 2-digit area codes; the rest 3.
_LANDLINE = re.compile(r"0(?:(?:10|2\d)\d{8}|[3-9]\d{2}\d{7,8})")


class PhoneError(ValueError):
    """Not a Chinese mobile or landline number; the message says why, in Chinese."""


def normalise(raw: str | int) -> str:
    """Return the canonical form of `raw` or raise PhoneError."""
    text = str(raw).strip()
    if text.endswith(".0"):  # Excel turns long numbers into floats
        text = text[:-2]
    text = _SEPARATORS.sub("", text)
    for prefix in ("+86", "0086", "86"):
        if text.startswith(prefix) and len(text) - len(prefix) >= 10:
            text = text[len(prefix):]
            if not (_MOBILE.fullmatch(text) or text.startswith("0")):
                text = "0" + text  # +86 10 1234 5678: the trunk 0 is dropped abroad
            break
    if not text:
        raise PhoneError("号码为空")
    if not text.isdigit():
        raise PhoneError("号码含有非数字字符")
    if _MOBILE.fullmatch(text) or _LANDLINE.fullmatch(text):
        return text
    if text.startswith("1"):
        raise PhoneError("手机号码应为11位，以13-19开头")
    raise PhoneError("固定电话应包含区号，如 010-12345678")
