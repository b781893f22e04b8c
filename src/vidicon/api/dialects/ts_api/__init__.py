"""TS-API (TS-CMS / TS-NVR / TS-LPR) dialect: see conformance.md for what is done."""

from fastapi import APIRouter

from vidicon.api.dialects.ts_api import event_videos, export, find, routes
from vidicon.api.dialects.ts_api.info import router as info_router
from vidicon.api.dialects.ts_api.status import router as status_router
from vidicon.api.dialects.ts_api.system import router as system_router

router = APIRouter()
for _module in (routes, find, export, event_videos):
    router.include_router(_module.router)
router.include_router(info_router)
router.include_router(system_router)
router.include_router(status_router)

__all__ = ["router"]
