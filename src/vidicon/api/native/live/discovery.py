"""Stream discovery: every channel's live sources, in the shape TS-API's ``src`` uses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from vidicon.api.native.security import AppDep, Viewer
from vidicon.services.live import LiveSource

router = APIRouter(prefix="/v1/live", tags=["live"])
ChannelId = Annotated[int, Path(ge=1, le=1024, description="channel id")]


def source_url(request: Request, source: LiveSource) -> str:
    """The absolute URL of ``source`` as seen by the client that asked."""
    base = request.base_url
    host = base.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    if source.scheme == "rtsp":
        return f"rtsp://{host}:{source.port}{source.path}"
    scheme = base.scheme
    if source.scheme == "ws":
        scheme = "wss" if scheme == "https" else "ws"
    netloc = base.netloc
    return f"{scheme}://{netloc}{source.path}"


def source_item(request: Request, source: LiveSource) -> dict[str, Any]:
    return {
        "protocol": source.protocol,
        "profile": source.profile,
        "src": source_url(request, source),
        "type": source.type,
        "label": source.label,
        "size": list(source.size),
    }


@router.get("")
async def all_live_sources(user: Viewer, app: AppDep, request: Request) -> list[dict[str, Any]]:
    """Every channel the caller may watch, with its live sources."""
    out = []
    for channel_id in app.live.channel_ids(user):
        pipeline = app.live.pipeline(user, channel_id)
        title = pipeline.settings.name
        out.append(
            {
                "chid": channel_id,
                "title": title,
                "display": f"CH{channel_id}: {title}",
                "status": app.runtime.status(channel_id).code,
                "src": [source_item(request, s) for s in app.live.sources(user, channel_id)],
            }
        )
    return out


@router.get("/{channel_id}/sources")
async def channel_live_sources(
    user: Viewer, app: AppDep, request: Request, channel_id: ChannelId
) -> list[dict[str, Any]]:
    return [source_item(request, s) for s in app.live.sources(user, channel_id)]
