"""Request and response bodies of the native API (times: ISO 8601 UTC and microseconds)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from vidicon.core.clock import datetime_to_us, us_to_iso
from vidicon.db.recordings import SegmentRow
from vidicon.services.recordings import Gap


class SetupRequest(BaseModel):
    secret: str = Field(max_length=256)
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=1024)


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    username: str
    is_admin: bool
    channels: list[int] | None = Field(description="channels this user may see; null: all")
    rights: list[str] = Field(
        default_factory=list, description="rights held (administrators hold every right)"
    )


class TokenRequest(BaseModel):
    name: str = Field(default="api", max_length=64)
    ttl_seconds: int | None = Field(default=None, gt=0, le=10 * 365 * 86400)


class TokenResponse(BaseModel):
    token: str
    name: str


class ManualRecording(BaseModel):
    on: bool


class LockRequest(BaseModel):
    locked: bool


class SegmentOut(BaseModel):
    id: int
    channel: int
    stream: str
    kind: str
    state: str
    locked: bool
    start: str
    end: str
    start_us: int
    end_us: int
    run_start_us: int
    duration_s: float
    size: int
    codecs: str
    width: int
    height: int
    download: str

    @classmethod
    def of(cls, row: SegmentRow) -> SegmentOut:
        return cls(
            id=row.id,
            channel=row.channel_id,
            stream=row.stream,
            kind=row.kind,
            state=row.state,
            locked=row.locked,
            start=us_to_iso(row.start_us),
            end=us_to_iso(row.end_us),
            start_us=row.start_us,
            end_us=row.end_us,
            run_start_us=row.run_start_us,
            duration_s=(row.end_us - row.start_us) / 1e6,
            size=row.size,
            codecs=row.codecs,
            width=row.width,
            height=row.height,
            download=f"/v1/segments/{row.id}/file",
        )


class GapOut(BaseModel):
    start: str
    end: str
    start_us: int
    end_us: int

    @classmethod
    def of(cls, gap: Gap) -> GapOut:
        return cls(
            start=us_to_iso(gap.start_us),
            end=us_to_iso(gap.end_us),
            start_us=gap.start_us,
            end_us=gap.end_us,
        )


class RecordingsOut(BaseModel):
    channel: int
    stream: str
    start: str
    end: str
    segments: list[SegmentOut]
    gaps: list[GapOut]


class ErrorOut(BaseModel):
    code: str
    message: str


def parse_time(value: str) -> int:
    """ISO 8601 with a zone, or integer UTC microseconds."""
    text = value.strip()
    if text.lstrip("-").isdigit() and len(text) < 20:
        number = int(text)
        if not MIN_US <= number <= MAX_US:
            raise ValueError("time is out of range (years 1970-9999)")
        return number
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("time must be ISO 8601 with a time zone, or UTC microseconds") from None
    number = datetime_to_us(parsed)
    if not MIN_US <= number <= MAX_US:
        raise ValueError("time is out of range (years 1970-9999)")
    return number


MIN_US = 0
MAX_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
