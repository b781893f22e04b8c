"""TS-API (TS-CMS / TS-NVR / TS-LPR) dialect: see conformance.md for what is done."""

from fastapi import APIRouter

from vidicon.api.dialects.ts_api import event_videos, export, find, push, routes, subscribe

router = APIRouter()
for _module in (routes, find, export, event_videos):
    router.include_router(_module.router)
router.include_router(subscribe.router)
router.include_router(push.router)

__all__ = ["router"]
