"""TS-API's notations: times, durations, flags, labels and names.

Times follow the spec's appendix: ``YYYY-MM-DDThh:mm:ss.sss`` with ``±hh:mm``,
``±hhmm``, ``±hh`` or ``Z``; a time without an offset is the server's local
time. Answers are given in the server's local time with its offset.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

from vidicon.base.errors import InvalidInput
from vidicon.core.clock import datetime_to_us, us_to_datetime

_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)
_DURATION = re.compile(r"(\d{1,12})(ms|w|d|h|m|s)?")
_DURATION_US = {
    "w": 7 * 86_400_000_000,
    "d": 86_400_000_000,
    "h": 3_600_000_000,
    "m": 60_000_000,
    "s": 1_000_000,
    "ms": 1_000,
}
MAX_DURATION_US = 366 * 86_400_000_000
_FALSE = {"false", "0", "no", "off"}
_LABEL_NAMES = {2160: "4K UHD", 1440: "QHD", 1080: "FHD", 720: "HD"}


def parse_time(text: str, zone: tzinfo, name: str = "when") -> int:
    """UTC microseconds of a TS-API time; InvalidInput names ``name`` if it is not one."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"{name} is not an ISO 8601 time", name)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        local = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            micro,
        )  # fmt: skip
    except ValueError:
        raise InvalidInput(f"{name} is not a valid date and time", name) from None
    if offset is None:
        moment = local.replace(tzinfo=zone)
    elif offset == "Z":
        moment = local.replace(tzinfo=UTC)
    else:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        if delta >= timedelta(hours=24):
            raise InvalidInput(f"{name} has an impossible UTC offset", name)
        moment = local.replace(tzinfo=UTC) - sign * delta
    try:
        return datetime_to_us(moment)
    except OverflowError:
        raise InvalidInput(f"{name} is out of range", name) from None


def format_time(us: int, zone: tzinfo) -> str:
    """``2018-02-05T17:57:12.935-05:00``: local time, milliseconds, its offset."""
    local = us_to_datetime(us).astimezone(zone)
    text = local.isoformat(timespec="milliseconds")
    return text[:-6] + "Z" if zone is UTC else text


def parse_duration(text: str, name: str = "duration") -> int:
    """Microseconds of ``1w``, ``5d``, ``3h``, ``10m``, ``30s``, ``5000ms`` or plain seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"{name} must be a number with one unit (w, d, h, m, s, ms)", name)
    value = int(match.group(1)) * _DURATION_US[match.group(2) or "s"]
    if value <= 0 or value > MAX_DURATION_US:
        raise InvalidInput(f"{name} must be more than 0 and at most 366 days", name)
    return value


def flag(value: str | None) -> bool:
    """TS-API flags: present without a value (``?nameonly``) or with any but false means true."""
    return value is not None and value.strip().lower() not in _FALSE


def parse_int(text: str | None, name: str, low: int, high: int) -> int | None:
    if text is None or text == "":
        return None
    value = text.strip()
    if not value.isdecimal() or len(value) > 12 or not low <= int(value) <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}", name)
    return int(value)


def parse_channels(text: str | None) -> list[int] | None:
    """``ch=1`` or ``ch=1,2,3``; None when absent (all channels)."""
    if text is None or text.strip() == "":
        return None
    channels = [parse_int(part, "ch", 1, 1024) for part in text.split(",")[:1024]]
    return sorted({c for c in channels if c is not None})


def recorded_label(height: int) -> str:
    """``1080p FHD`` as the spec's recorded sources name their resolution."""
    name = _LABEL_NAMES.get(height)
    return f"{height}p {name}" if name else f"{height}p"


def encoded_title(title: str) -> str:
    """Recorded sources carry the channel name percent-encoded, dots included
    (``192%2E168%2E0%2E111`` in the spec)."""
    return "".join(
        ch if ch.isascii() and ch.isalnum() else "".join(f"%{b:02X}" for b in ch.encode())
        for ch in title
    )
