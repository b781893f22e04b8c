"""TS-API ``/api/enum``: channels, event types, plate and call sources, objects.

- ``channel``: the channels the user may see; ``staticSrc`` adds their live
  sources (the same list ``/api/vod`` gives), ``caps`` their capabilities
  from :func:`channel_caps` (the device-control service).
- ``eventType``: the event log table of :mod:`.event_types`, in ``lang``.
- ``lprSrc``: the plate sources seen so far (a pushed device code, or a
  channel's own reader ``CH<n>``), numbered in the order first seen; the
  LPR right; only the user's channels (the event search decides); no
  recognition zones are configured in Vidicon, so no ``zone``.
- ``emergencyCall``, ``parkingLot``: Vidicon registers no call devices and
  no parking lots, so both are empty (pushed calls need no registration).
- ``objectType``, ``objectAttr``, ``realtimeEvent``: what the server supports.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from vidicon.api.dialects.ts_api import event_types
from vidicon.api.dialects.ts_api import translate as tr
from vidicon.api.dialects.ts_api.channel import caps_json
from vidicon.api.dialects.ts_api.lang import json_response, language
from vidicon.api.dialects.ts_api.object_filters import OBJECT_ATTRIBUTES, OBJECT_TYPES
from vidicon.api.native.live.discovery import source_item
from vidicon.api.native.security import AppDep, CurrentUser
from vidicon.app import Vidicon
from vidicon.base.errors import InvalidInput
from vidicon.services.auth import User

router = APIRouter(tags=["ts-api"])
WHATS = ("channel", "emergencyCall", "eventType", "lprSrc", "objectAttr", "objectType",
         "parkingLot", "realtimeEvent")  # fmt: skip
# The subscribeEvents topics the server serves (no parking lots: no parkingCount, packing).
REALTIME_EVENTS = ["channelStatus", "emergencyCall", "LPR", "systemEvent", "motionChanges",
                   "recordingStatus", "object"]  # fmt: skip
NO_CAPS: dict[str, Any] = {
    "pantilt": False,
    "zoom": False,
    "focus": False,
    "iris": False,
    "home": False,
    "maxPreset": 0,
    "aux": 0,
    "digitalInputs": 0,
    "relayOutputs": 0,
    "reboot": False,
}


async def channel_caps(app: Vidicon, user: User, channel_ids: list[int]) -> dict[int, Any]:
    """The cameras' capabilities from the device-control service (what
    ``/api/channel/info?caps`` answers); none for a channel whose camera
    cannot be controlled or does not answer."""
    found = {d.channel_id: d.info for d in await app.device_control.info(user, channel_ids)}
    return {c: caps_json(info) if (info := found.get(c)) else dict(NO_CAPS) for c in channel_ids}


async def _channels(app: Vidicon, user: User, request: Request) -> list[dict[str, Any]]:
    params = request.query_params
    with_src = tr.flag(params.get("staticSrc"))  # present without a value: true
    with_caps = tr.flag(params.get("caps"))
    out = []
    ids = app.live.channel_ids(user)
    caps = await channel_caps(app, user, ids) if with_caps else {}
    for channel_id in ids:
        title = app.live.pipeline(user, channel_id).settings.name
        item: dict[str, Any] = {
            "chid": channel_id,
            "title": title,
            "displayName": f"CH{channel_id}. {title}" if title else f"CH{channel_id}",
        }
        if with_src:
            item["src"] = [source_item(request, s) for s in app.live.sources(user, channel_id)]
        if with_caps:
            item["caps"] = caps[channel_id]
        out.append(item)
    return out


async def _lpr_sources(app: Vidicon, user: User) -> list[dict[str, Any]]:
    return [
        {
            "id": source.id,
            "code": source.code,
            "name": source.name,
            "linkedChannel": list(source.linked),
            "tag": "Normal",
        }
        for source in await app.event_search.lpr_sources(user)
    ]


def _object_attributes(kind: str | None) -> dict[str, Any]:
    if kind is None or not kind.strip():
        return OBJECT_ATTRIBUTES
    found = OBJECT_ATTRIBUTES.get(kind.strip())
    if found is None:
        raise InvalidInput(f"type must be one of {', '.join(OBJECT_TYPES)}", "type")
    return found


@router.get("/api/enum")
async def enum(request: Request, app: AppDep, user: CurrentUser) -> Response:
    """Enumerations (``what=channel|emergencyCall|eventType|lprSrc|objectAttr|
    objectType|parkingLot|realtimeEvent``)."""
    what = request.query_params.get("what", "")
    data: Any
    try:
        if what == "channel":
            data = await _channels(app, user, request)
        elif what == "eventType":
            data = event_types.enum(language(request.query_params.get("lang")))
        elif what == "lprSrc":
            data = await _lpr_sources(app, user)
        elif what == "emergencyCall":
            data = []
        elif what == "parkingLot":
            data = {"counter": [], "group": []}
        elif what == "realtimeEvent":
            data = REALTIME_EVENTS
        elif what == "objectType":
            data = OBJECT_TYPES
        elif what == "objectAttr":
            data = _object_attributes(request.query_params.get("type"))
        else:
            raise InvalidInput(f"what must be one of {', '.join(WHATS)}", "what")
        return json_response(request, data)
    except InvalidInput as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
