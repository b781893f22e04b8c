"""Player pages: TS-API's ``/watch`` and the live grid."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
