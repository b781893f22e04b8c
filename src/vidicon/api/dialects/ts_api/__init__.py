"""TS-API (TS-CMS / TS-NVR / TS-LPR) dialect: see conformance.md for what is done."""

from fastapi import APIRouter

from vidicon.api.dialects.ts_api import (
    auth,
    channel,
    channel_admin,
    enum,
    event_videos,
    export,
    find,
    find_events,
    info,
    push,
    routes,
    status,
    subscribe,
    system,
)

router = APIRouter()
for _module in (
    auth, routes, find, find_events, enum, export, event_videos, channel, channel_admin, info,
    system, status, push, subscribe,
):  # fmt: skip
    router.include_router(_module.router)

__all__ = ["router"]
