"""RTSP 1.0 restream server: every hub stream to VLC, FFmpeg and other NVRs.

A mechanism only: it knows hub readers, not users or channels. Whoever builds
:class:`RtspServer` gives it an ``authorize(path, username, password)``
callback that returns a :class:`~vidicon.media.hub.HubReader` (see
``services/restream.py``). Modules: ``messages`` (requests, responses,
Transport headers), ``describe`` (SDP), ``packetize`` (RTP payloads, RTCP),
``output`` (TCP-interleaved and UDP senders), ``session`` (one viewer's
pump), ``connection`` (request handling) and ``server``.
"""

from vidicon.media.rtsp_server.server import Authorize, RtspServer

__all__ = ["Authorize", "RtspServer"]
