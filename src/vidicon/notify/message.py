"""What a notifier sends: one JSON message per event, the same for every protocol.

The message names the event (kind, code, phase), its channel (id and name),
its time (ISO 8601 UTC), label and attributes, and links to its pictures on
the native API (``/v1/events/{id}/images/{n}``) so a receiver can fetch them
with its own credentials. The snapshot JPEG travels separately (e-mail
attachment, FTP file); MQTT and webhooks carry links only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from vidicon.core.clock import us_to_datetime, us_to_iso
from vidicon.core.events import Event, JsonValue

Phase = Literal["begin", "end", "moment"]


@dataclass(frozen=True, slots=True)
class Notice:
    """One event ready to send: the message and, where wanted, its snapshot."""

    event: Event
    phase: Phase
    channel_name: str | None
    message: dict[str, JsonValue]
    snapshot: bytes | None = None

    @property
    def body(self) -> bytes:
        return json.dumps(self.message, separators=(",", ":"), ensure_ascii=False).encode()

    @property
    def subject(self) -> str:
        """One line for people: kind, code, label and channel."""
        where = self.channel_name or (
            f"channel {self.event.channel_id}" if self.event.channel_id is not None else "system"
        )
        kind, code = self.event.kind.value, self.event.code
        what = kind if code == kind else f"{kind} {code}"
        label = f" ({self.event.label})" if self.event.label else ""
        ended = " ended" if self.phase == "end" else ""
        text = f"{what}{label}{ended} on {where} at {us_to_iso(self.event.begin_us)}"
        return "".join(c if c.isprintable() else " " for c in text)  # one header line

    def file_name(self) -> str:
        """A safe, unique name for the snapshot: only [A-Za-z0-9_.-]."""
        event = self.event
        where = f"ch{event.channel_id}" if event.channel_id is not None else "system"
        stamp = us_to_datetime(event.begin_us).strftime("%Y%m%dT%H%M%S")
        ident = event.id if event.id is not None else event.begin_us
        return f"{where}_{stamp}Z_{_safe(event.kind.value)}_{ident}.jpg"


def phase_of(event: Event, began: bool) -> Phase:
    """``begin`` while it lasts, ``end`` when one that began is finished, else ``moment``."""
    if event.end_us is None:
        return "begin"
    return "end" if began else "moment"


def build_notice(
    event: Event,
    phase: Phase,
    channel_name: str | None,
    public_url: str,
    snapshot: bytes | None = None,
) -> Notice:
    base = public_url.rstrip("/")
    images = (
        [f"{base}/v1/events/{event.id}/images/{n}" for n in range(len(event.images))]
        if event.id is not None
        else []
    )
    channel = None if event.channel_id is None else {"id": event.channel_id, "name": channel_name}
    message: dict[str, JsonValue] = {
        "id": event.id,
        "kind": event.kind.value,
        "code": event.code,
        "phase": phase,
        "channel": channel,
        "time": us_to_iso(event.begin_us),
        "end": None if event.end_us is None else us_to_iso(event.end_us),
        "label": event.label,
        "attributes": event.public_attributes(),
        "images": images,
    }
    return Notice(event, phase, channel_name, message, snapshot)


def _safe(text: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in text)
