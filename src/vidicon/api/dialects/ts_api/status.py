"""TS-API ``/api/status``: each channel's status code, its message in the
asked language (``verbose``, ``lang``) and its recording status
(``recordingStatus``).

A user sees only the channels he may see; naming one he may not is 403.
Channels named in ``ch`` that do not exist are left out.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from vidicon.api.dialects.ts_api import translate as tr
from vidicon.api.dialects.ts_api.info import answer
from vidicon.api.dialects.ts_api.lang import language, text
from vidicon.api.dialects.ts_api.status_texts import MESSAGES
from vidicon.api.native.security import AppDep, CurrentUser
from vidicon.base.errors import InvalidInput
from vidicon.core.zone import server_zone

router = APIRouter(tags=["ts-api"])
Flag = Annotated[str | None, Query(description="true when present without a value")]


@router.get("/api/status", response_class=Response)
async def status(
    request: Request,
    app: AppDep,
    user: CurrentUser,
    ch: Annotated[str | None, Query(description="channel, or channels 1,2,3")] = None,
    verbose: Flag = None,
    lang: Annotated[str | None, Query(description="language of the messages")] = None,
    recordingStatus: Flag = None,
) -> Response:
    """Status code of each channel, with messages and recording status on request."""
    try:
        channels = tr.parse_channels(ch)
    except InvalidInput as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    with_message, with_recording = tr.flag(verbose), tr.flag(recordingStatus)
    words = language(lang)
    zone = server_zone()
    out: list[dict[str, Any]] = []
    for state in await app.channel_status.states(user, channels):
        item: dict[str, Any] = {"chid": state.channel_id, "status": {"code": int(state.status)}}
        if with_message:
            item["status"]["message"] = text(MESSAGES, state.status, words)
        if with_recording:
            recording: dict[str, Any] = {
                "streaming": state.streaming,
                "recording": state.recording,
            }
            if state.recording_failure_us is not None:
                recording["timestampRecordingFailure"] = tr.format_time(
                    state.recording_failure_us, zone
                )
            item["recordingStatus"] = recording
        out.append(item)
    return answer(request, out)
