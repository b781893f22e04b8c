"""A native asyncio RTSP client: SDP, authentication, RTP depacketizing, sessions.

One event loop reads every camera in large chunks and depacketizes H.264
(RFC 6184) and AAC (RFC 3640) into AVCC access units and raw AAC frames.
"""
