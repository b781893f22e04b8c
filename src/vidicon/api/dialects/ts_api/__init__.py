"""TS-API (TS-CMS / TS-NVR / TS-LPR) dialect: see conformance.md for what is done."""

from vidicon.api.dialects.ts_api.routes import router

__all__ = ["router"]
