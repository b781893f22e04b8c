"""WebRTC live output: a hub reader as an aiortc video track, H.264 passed through.

aiortc's ``RTCRtpSender`` asks its track for the next item with ``recv()``.
A decoded frame goes through its encoder; an ``av.Packet`` goes to
``H264Encoder.pack``, which splits the packet's bytes at Annex B start codes,
packs the NAL units (single NAL unit, STAP-A, FU-A; packetization-mode=1) and
takes the RTP time from ``packet.pts`` in ``packet.time_base``. So the track
returns one ``av.Packet`` per access unit in Annex B form (the hub carries
AVCC: 4-byte lengths, which would be split at the wrong places), with AUD NAL
units left out and the session's SPS and PPS put before an IDR picture that
lacks them, and ``pts`` already on the viewer's 90 kHz RTP clock. Nothing is
decoded or encoded. Audio is not sent: WebRTC has no AAC (Opus, G.711 and
G.722 only), and re-encoding it is a decode per viewer.

Timing (:class:`RtpTimeline`): a new viewer starts on the cached GOP's
keyframe, so its first frames are up to a GOP old and arrive in one burst.
Stamped with their own times, a receiver would schedule them in real time and
show the stream a GOP late for as long as its jitter buffer keeps that delay.
The burst is therefore stamped one RTP tick apart, ending on the newest frame,
and the live frames that follow keep their real spacing from there: the
receiver decodes the catch-up frames at once and is at the live edge. Within
an ingest session RTP time follows the packets' presentation times; a new
session (camera reconnect) is placed after the previous one by UTC, never
backwards.

:func:`register_h264_profiles` adds Main, High and Constrained High H.264 to
aiortc's codec table (it knows only the Baseline profiles), so an answer can
name the profile the camera really sends when the offer includes it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
from aioice import ice as aioice_ice
from aiortc import MediaStreamTrack
from aiortc.codecs import CODECS
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtpCodecCapability,
    RTCRtpCodecParameters,
)
from aiortc.sdp import H264Profile, parse_h264_profile_level_id

from vidicon.core.media import Packet, StreamInfo, Track, VideoConfig
from vidicon.media import h264
from vidicon.media.hub import HubItem, HubReader, StreamEnd, StreamStart

log = logging.getLogger(__name__)

RTP_CLOCK = 90_000
RTP_TIME_BASE = Fraction(1, RTP_CLOCK)
START_CODE = b"\x00\x00\x00\x01"
MAX_OVERFLOWS = 5  # a viewer whose reader overflows more often than this is dropped

# profile-level-id of the H.264 variants added to aiortc's table (level 3.1;
# level-asymmetry-allowed lets the sender exceed it, as browsers accept).
_EXTRA_PROFILES = ("4d001f", "64001f", "640c1f")  # Main, High, Constrained High
_EXTRA_PAYLOAD_TYPE = 110  # local payload types only; an answer uses the offer's


def _h264_parameters(profile_level_id: str) -> dict[str, str | int | None]:
    return {
        "level-asymmetry-allowed": "1",
        "packetization-mode": "1",
        "profile-level-id": profile_level_id,
    }


def register_h264_profiles() -> None:
    """Let aiortc negotiate Main, High and Constrained High H.264 (idempotent).

    aiortc registers Baseline and Constrained Baseline only, and answers only
    with codecs from its table; its packetizer does not depend on the profile.
    """
    video = CODECS["video"]
    known = {str(c.parameters.get("profile-level-id", "")).lower() for c in video}
    payload_type = max([_EXTRA_PAYLOAD_TYPE - 1, *(c.payloadType or 0 for c in video)]) + 1
    for profile_level_id in _EXTRA_PROFILES:
        if profile_level_id in known:
            continue
        feedback = [
            RTCRtcpFeedback(type="nack"),
            RTCRtcpFeedback(type="nack", parameter="pli"),
            RTCRtcpFeedback(type="goog-remb"),
        ]
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/H264",
                clockRate=RTP_CLOCK,
                payloadType=payload_type,
                rtcpFeedback=feedback,
                parameters=_h264_parameters(profile_level_id),
            )
        )
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/rtx",
                clockRate=RTP_CLOCK,
                payloadType=payload_type + 1,
                parameters={"apt": payload_type},
            )
        )
        payload_type += 2


def include_loopback_candidates() -> None:
    """Offer 127.0.0.1 and ::1 as host candidates too (idempotent).

    aioice leaves loopback out of its host candidates, so a viewer on the same
    machine had to reach a LAN address, and a machine with loopback only
    (a container, a test host) offered no candidate at all. A loopback
    candidate costs a remote viewer one failed check, nothing more.
    """
    if getattr(aioice_ice.get_host_addresses, "vidicon_loopback", False):
        return
    original = aioice_ice.get_host_addresses

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = original(use_ipv4, use_ipv6)
        loopback = [a for a, on in (("127.0.0.1", use_ipv4), ("::1", use_ipv6)) if on]
        return addresses + [a for a in loopback if a not in addresses]

    with_loopback.vidicon_loopback = True  # type: ignore[attr-defined]
    aioice_ice.get_host_addresses = with_loopback


def stream_profile(video: VideoConfig) -> H264Profile | None:
    """The WebRTC H.264 profile class of a stream (from its SPS), or None if unknown."""
    try:
        return parse_h264_profile_level_id(video.sps[1:4].hex())[0]
    except (ValueError, IndexError):
        return None


def h264_preferences(video: VideoConfig) -> list[RTCRtpCodecCapability]:
    """H.264 codecs (and RTX) in the order an answer should pick them.

    The stream's own profile first, then the others (a decoder for the
    negotiated profile nearly always decodes the stream anyway). Never VP8:
    the stream is passed through, not encoded.
    """
    own = stream_profile(video)
    first: list[RTCRtpCodecCapability] = []
    rest: list[RTCRtpCodecCapability] = []
    rtx: list[RTCRtpCodecCapability] = []
    for codec in CODECS["video"]:
        capability = RTCRtpCodecCapability(
            mimeType=codec.mimeType, clockRate=codec.clockRate, parameters=codec.parameters
        )
        name = codec.mimeType.lower()
        if name == "video/rtx":
            if not rtx:
                rtx.append(RTCRtpCodecCapability(mimeType=codec.mimeType, clockRate=RTP_CLOCK))
            continue
        if name != "video/h264":
            continue
        try:
            profile = parse_h264_profile_level_id(str(codec.parameters["profile-level-id"]))[0]
        except (KeyError, ValueError):
            continue
        (first if profile == own else rest).append(capability)
    return first + rest + rtx


def annexb_access_unit(avcc: bytes, key: bool, video: VideoConfig | None) -> bytes:
    """One AVCC access unit as Annex B (4-byte start codes), ready for aiortc's packetizer.

    AUD NAL units are left out; an IDR access unit without its own SPS/PPS
    gets the stream's, so a receiver can start decoding at any keyframe.
    Raises ValueError for malformed AVCC.
    """
    nals = [nal for nal in h264.iter_avcc(avcc) if nal and h264.nal_type(nal) != h264.NAL_AUD]
    if key and video is not None:
        kinds = {h264.nal_type(nal) for nal in nals}
        if h264.NAL_SPS not in kinds or h264.NAL_PPS not in kinds:
            nals[:0] = [video.sps, video.pps]
    return b"".join(START_CODE + nal for nal in nals)


class RtpTimeline:
    """Hub packet times to one viewer's 90 kHz RTP clock (see the module doc)."""

    def __init__(self) -> None:
        # (ingest session, presentation time at 90 kHz, RTP time) of the reference frame
        self._ref: tuple[int, int, int] | None = None
        self._high: int | None = None  # the largest RTP time given so far
        self._high_time_us = 0  # UTC of the packet that was given it

    def stamp(self, packet: Packet, session: int, timescale: int, catching_up: bool) -> int:
        """The RTP time (90 kHz, not wrapped) of a video packet.

        ``catching_up``: the packet belongs to the backlog a viewer starts
        with; it is stamped one tick after the previous frame.
        """
        pts = packet.pts if timescale == RTP_CLOCK else packet.pts * RTP_CLOCK // timescale
        ref = self._ref
        if catching_up and self._high is not None:
            rtp = self._high + 1
        elif ref is not None and ref[0] == session and not catching_up:
            rtp = ref[2] + (pts - ref[1])
            self._note(rtp, packet.time_us)
            return rtp
        elif self._high is None:
            rtp = 0
        else:
            # A new ingest session: after the previous one by UTC, never backwards.
            gap = max(0, packet.time_us - self._high_time_us) * RTP_CLOCK // 1_000_000
            rtp = self._high + max(1, gap)
        self._ref = (session, pts, rtp)
        self._note(rtp, packet.time_us)
        return rtp

    def _note(self, rtp: int, time_us: int) -> None:
        if self._high is None or rtp > self._high:
            self._high = rtp
            self._high_time_us = time_us


class HubVideoTrack(MediaStreamTrack):
    """The video of a hub reader as an aiortc track of ready-made H.264 packets.

    ``on_end`` runs once when the track ends for a reason of its own (the
    stream was closed, the viewer was too slow) or because aiortc stopped it;
    the reader is closed then too.
    """

    kind = "video"

    def __init__(
        self,
        reader: HubReader,
        on_end: Callable[[str], None] | None = None,
        max_overflows: int = MAX_OVERFLOWS,
    ) -> None:
        super().__init__()
        self.reader = reader
        self.frames_sent = 0
        self.catch_up_frames = 0  # frames of the start backlog, sent one tick apart
        self._on_end = on_end
        self._max_overflows = max_overflows
        self._timeline = RtpTimeline()
        self._info: StreamInfo | None = None
        self._session = 0
        self._backlog: deque[HubItem] | None = None  # None until the first recv()
        self._catch_up = 0  # backlog video packets still to send
        self._end_reason = "stopped"

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        if self._backlog is None:
            self._take_backlog()
        while True:
            item = self._next_queued()
            if item is None:
                item = await self.reader.get()
            if item is None:
                self._end("stream closed")
                raise MediaStreamError
            if self.reader.overflows > self._max_overflows:
                self.reader.drop()
                self._end("too slow")
                raise MediaStreamError
            packet = self._packet(item)
            if packet is not None:
                return packet

    def stop(self) -> None:
        if self.readyState == "live":
            self.reader.close()
            super().stop()
            on_end, self._on_end = self._on_end, None
            if on_end is not None:
                on_end(self._end_reason)

    # --- internals ---------------------------------------------------------

    def _take_backlog(self) -> None:
        """Everything queued now: the cached GOP and what came while connecting."""
        backlog: deque[HubItem] = deque()
        while (item := self.reader.get_nowait()) is not None:
            backlog.append(item)
        self._backlog = backlog
        self._catch_up = sum(
            1 for item in backlog if isinstance(item, Packet) and item.track is Track.VIDEO
        )
        self.catch_up_frames = self._catch_up

    def _next_queued(self) -> HubItem | None:
        return self._backlog.popleft() if self._backlog else None

    def _packet(self, item: HubItem) -> av.Packet[Any] | None:
        if isinstance(item, StreamStart):
            self._info, self._session = item.info, item.session
            return None
        if isinstance(item, StreamEnd) or item.track is not Track.VIDEO:
            return None
        catching_up = self._catch_up > 0
        if catching_up:
            self._catch_up -= 1
        video = self._info.video if self._info is not None else None
        try:
            data = annexb_access_unit(item.data, item.key, video)
        except ValueError:
            log.warning("WebRTC viewer %s: malformed access unit skipped", self.reader.name)
            return None
        if not data:
            return None
        timescale = video.timescale if video is not None else RTP_CLOCK
        packet = av.Packet(data)
        packet.pts = self._timeline.stamp(item, self._session, timescale, catching_up)
        packet.time_base = RTP_TIME_BASE
        self.frames_sent += 1
        return packet

    def _end(self, reason: str) -> None:
        self._end_reason = reason
        self.stop()
