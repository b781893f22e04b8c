"""The SDP a DESCRIBE returns (RFC 4566): H.264 video and optional AAC audio.

H.264 is ``packetization-mode=1`` (single NAL units and FU-A) with the
stream's SPS and PPS in ``sprop-parameter-sets`` and ``profile-level-id``
from the SPS (RFC 6184). AAC is ``mpeg4-generic`` AAC-hbr (RFC 3640) with the
AudioSpecificConfig as ``config=``. Track control URLs are relative
(``trackID=N``) to the ``Content-Base`` of the reply.
"""

from __future__ import annotations

import base64
import ipaddress

from vidicon.core.media import StreamInfo, Track

VIDEO_PAYLOAD_TYPE = 96
AUDIO_PAYLOAD_TYPE = 97


def track_control(track: Track) -> str:
    return f"trackID={int(track)}"


def tracks_of(info: StreamInfo) -> list[Track]:
    return [Track.VIDEO] if info.audio is None else [Track.VIDEO, Track.AUDIO]


def clock_rate(info: StreamInfo, track: Track) -> int:
    if track is Track.AUDIO:
        assert info.audio is not None
        return info.audio.sample_rate
    return info.video.timescale


def payload_type(track: Track) -> int:
    return VIDEO_PAYLOAD_TYPE if track is Track.VIDEO else AUDIO_PAYLOAD_TYPE


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def session_description(info: StreamInfo, *, address: str, session_id: int, title: str) -> str:
    """The SDP text for ``info``; ``address`` is the server's address on this connection."""
    try:
        family = "IP6" if ipaddress.ip_address(address).version == 6 else "IP4"
    except ValueError:
        family = "IP4"
    any_address = "::" if family == "IP6" else "0.0.0.0"  # noqa: S104 - SDP "no address"
    video = info.video
    lines = [
        "v=0",
        f"o=- {session_id} 1 IN {family} {address}",
        f"s={title}",
        f"c=IN {family} {any_address}",
        "t=0 0",
        "a=tool:Vidicon",
        "a=range:npt=0-",
        "a=control:*",
        f"m=video 0 RTP/AVP {VIDEO_PAYLOAD_TYPE}",
        f"a=rtpmap:{VIDEO_PAYLOAD_TYPE} H264/{video.timescale}",
        f"a=fmtp:{VIDEO_PAYLOAD_TYPE} packetization-mode=1;profile-level-id={video.sps[1:4].hex()}"
        f";sprop-parameter-sets={_b64(video.sps)},{_b64(video.pps)}",
        f"a=framesize:{VIDEO_PAYLOAD_TYPE} {video.width}-{video.height}",
        f"a=control:{track_control(Track.VIDEO)}",
    ]
    audio = info.audio
    if audio is not None:
        pt = AUDIO_PAYLOAD_TYPE
        lines += [
            f"m=audio 0 RTP/AVP {pt}",
            f"a=rtpmap:{pt} MPEG4-GENERIC/{audio.sample_rate}/{audio.channels}",
            f"a=fmtp:{pt} streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13"
            f";indexlength=3;indexdeltalength=3;config={audio.asc.hex()}",
            f"a=control:{track_control(Track.AUDIO)}",
        ]
    return "\r\n".join(lines) + "\r\n"
