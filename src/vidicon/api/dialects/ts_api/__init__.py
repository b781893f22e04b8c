"""TS-API (TS-CMS / TS-NVR / TS-LPR) dialect: see conformance.md for what is done."""

from fastapi import APIRouter

from vidicon.api.dialects.ts_api import enum, event_videos, export, find, find_events, routes

router = APIRouter()
for _module in (routes, find, export, event_videos):
    router.include_router(_module.router)
for _module in (enum, find_events):
    router.include_router(_module.router)

__all__ = ["router"]
