"""Motion analysis status per channel. Settings travel with the channel
(``motion`` in ``PUT /v1/channels/{id}``); this only reports what runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from vidicon.api.native.security import AppDep, CurrentUser
from vidicon.core.channel import MotionStatusView

router = APIRouter(prefix="/v1")
ChannelId = Annotated[int, Path(ge=1, le=1024, description="channel id")]


@router.get("/channels/{channel_id}/motion", tags=["status"])
async def motion_status(user: CurrentUser, app: AppDep, channel_id: ChannelId) -> MotionStatusView:
    """Whether motion is analysed now, on which stream, and what it counted."""
    user.require_channel(channel_id)
    await app.channels.get(channel_id)
    return app.motion.status(channel_id)
