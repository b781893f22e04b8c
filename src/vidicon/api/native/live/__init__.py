"""Live outputs of the native API: every one a reader of a channel's hub.

Each output has its own module and router; this package mounts them all.
"""

from __future__ import annotations

from fastapi import APIRouter

from vidicon.api.native.live import discovery, flv, hls, mjpeg, pages, snapshot, webrtc, ws

router = APIRouter()
for _module in (discovery, ws, hls, flv, mjpeg, snapshot, webrtc, pages):
    router.include_router(_module.router)
