"""Parse the SDP answer of an RTSP DESCRIBE (RFC 4566) for H.264 and AAC media."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

H264 = "h264"
AAC = "aac"


@dataclass(frozen=True, slots=True)
class SdpMedia:
    """One ``m=`` section the client can use (H.264 video or MPEG4-GENERIC AAC audio)."""

    kind: str  # "video" | "audio"
    codec: str  # H264 | AAC
    payload_type: int
    clock_rate: int
    control: str  # absolute control URL
    channels: int = 1  # from rtpmap (audio); the ASC is authoritative
    fmtp: dict[str, str] = field(default_factory=dict)  # keys lower-cased

    # H.264
    @property
    def parameter_sets(self) -> list[bytes]:
        """The NAL units of ``sprop-parameter-sets`` (undecodable entries skipped)."""
        out: list[bytes] = []
        for item in self.fmtp.get("sprop-parameter-sets", "").split(","):
            item = item.strip()
            if not item:
                continue
            try:
                nal = base64.b64decode(item + "=" * (-len(item) % 4), validate=False)
            except (binascii.Error, ValueError):
                continue
            if nal:
                out.append(nal)
        return out

    @property
    def sps(self) -> bytes | None:
        return next((n for n in self.parameter_sets if n[0] & 0x1F == 7), None)

    @property
    def pps(self) -> bytes | None:
        return next((n for n in self.parameter_sets if n[0] & 0x1F == 8), None)

    @property
    def packetization_mode(self) -> int:
        return _int(self.fmtp.get("packetization-mode"), 0)

    # AAC (RFC 3640)
    @property
    def config(self) -> bytes | None:
        """The AudioSpecificConfig from ``config=`` (hex), or None."""
        value = self.fmtp.get("config", "").strip()
        try:
            return bytes.fromhex(value) if value else None
        except ValueError:
            return None

    @property
    def mode(self) -> str:
        return self.fmtp.get("mode", "")

    @property
    def size_length(self) -> int:
        return _int(self.fmtp.get("sizelength"), 0)

    @property
    def index_length(self) -> int:
        return _int(self.fmtp.get("indexlength"), 0)

    @property
    def index_delta_length(self) -> int:
        return _int(self.fmtp.get("indexdeltalength"), 0)


@dataclass(frozen=True, slots=True)
class SessionDescription:
    control: str  # aggregate control URL (for PLAY, keep-alives, TEARDOWN)
    video: SdpMedia | None
    audio: SdpMedia | None


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def resolve_control(base: str, control: str) -> str:
    """Resolve an ``a=control`` value against the Content-Base (or request URL).

    ``*`` means the base itself; an absolute ``rtsp://`` URL is used as is; a
    relative value is appended to the base after a ``/`` (what cameras and
    common clients expect, unlike RFC 3986 resolution which would drop the last
    path segment of a base without a trailing slash).
    """
    control = control.strip()
    if not control or control == "*":
        return base
    lower = control.lower()
    if lower.startswith(("rtsp://", "rtsps://", "rtspu://")):
        return control
    if control.startswith("/"):
        scheme, sep, rest = base.partition("://")
        host = rest.split("/", 1)[0]
        return f"{scheme}{sep}{host}{control}"
    return (base if base.endswith("/") else base + "/") + control


def _parse_fmtp(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in value.split(";"):
        key, sep, val = item.partition("=")
        key = key.strip().lower()
        if key and sep:
            params[key] = val.strip()
    return params


def parse_sdp(text: str, base_url: str) -> SessionDescription:
    """Pick the first H.264 video and the first AAC (mpeg4-generic) audio media.

    ``base_url`` is the Content-Base (or Content-Location, or request URL) of
    the DESCRIBE response. Other media and codecs are ignored.
    """
    session_control = ""
    sections: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            current = []
            sections.append((value, current))
        elif kind == "a":
            if current is None:
                if value.startswith("control:"):
                    session_control = value[8:].strip()
            else:
                current.append(value)
    video: SdpMedia | None = None
    audio: SdpMedia | None = None
    for mline, attrs in sections:
        media = _media(mline, attrs, base_url)
        if media is None:
            continue
        if media.kind == "video" and video is None:
            video = media
        elif media.kind == "audio" and audio is None:
            audio = media
    return SessionDescription(resolve_control(base_url, session_control), video, audio)


def _media(mline: str, attrs: list[str], base_url: str) -> SdpMedia | None:
    fields = mline.split()
    if len(fields) < 4 or fields[0] not in ("video", "audio"):
        return None
    kind = fields[0]
    formats = [f for f in fields[3:] if f.isdigit()]
    rtpmap: dict[str, tuple[str, int, int]] = {}
    fmtp: dict[str, str] = {}
    control = ""
    for attr in attrs:
        name, _, value = attr.partition(":")
        if name == "rtpmap":
            pt, _, enc = value.strip().partition(" ")
            parts = enc.strip().split("/")
            rate = _int(parts[1], 0) if len(parts) > 1 else 0
            channels = _int(parts[2], 1) if len(parts) > 2 else 1
            rtpmap[pt] = (parts[0].strip().lower(), rate, channels)
        elif name == "fmtp":
            pt, _, text = value.strip().partition(" ")
            fmtp[pt] = text
        elif name == "control":
            control = value.strip()
    for pt in formats:
        encoding, rate, channels = rtpmap.get(pt, ("", 0, 1))
        if kind == "video" and encoding == "h264":
            codec = H264
            rate = rate or 90_000
        elif kind == "audio" and encoding == "mpeg4-generic":
            codec = AAC
        else:
            continue
        params = _parse_fmtp(fmtp.get(pt, ""))
        if codec == AAC and (not rate or "aac" not in params.get("mode", "aac-hbr").lower()):
            continue
        return SdpMedia(
            kind=kind,
            codec=codec,
            payload_type=int(pt),
            clock_rate=rate,
            control=resolve_control(base_url, control),
            channels=channels,
            fmtp=params,
        )
    return None
