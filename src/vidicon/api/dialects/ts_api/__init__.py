"""TS-API (TS-CMS / TS-NVR / TS-LPR) dialect: see conformance.md for what is done."""

from fastapi import APIRouter

from vidicon.api.dialects.ts_api import auth, event_videos, export, find, routes

router = APIRouter()
for _module in (routes, find, export, event_videos):
    router.include_router(_module.router)
router.include_router(auth.router)

__all__ = ["router"]
