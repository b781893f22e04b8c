"""Status of channels as one user may see them: connection, streaming, recording.

The codes are the runtime's (``core/status.py``, TS-API's numbering). A
recording failure is reported while the channel should be recording, has
video, and is not recording, after its recorder failed to write.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidicon.core.status import ChannelStatus
from vidicon.services.auth import User
from vidicon.services.channels import ChannelService
from vidicon.services.runtime import Runtime


@dataclass(frozen=True, slots=True)
class ChannelState:
    channel_id: int
    status: ChannelStatus
    streaming: bool
    recording: bool
    recording_failure_us: int | None = None


class ChannelStatusService:
    def __init__(self, channels: ChannelService, runtime: Runtime) -> None:
        self.channels = channels
        self.runtime = runtime

    async def states(self, user: User, wanted: list[int] | None = None) -> list[ChannelState]:
        """Every channel ``user`` may see, or those of ``wanted`` that exist
        (Forbidden if one of them is not his to see)."""
        ids = await self.channels.ids()
        if wanted is None:
            chosen = [c for c in ids if user.can_view(c)]
        else:
            existing = set(ids)
            chosen = [c for c in wanted if c in existing]
            for channel_id in chosen:
                user.require_channel(channel_id)
        return [self.state(c) for c in chosen]

    def state(self, channel_id: int) -> ChannelState:
        view = self.runtime.status(channel_id)
        try:
            status = ChannelStatus(view.code)
        except ValueError:
            status = ChannelStatus.SERVICE_FAILURE
        failure = None
        pipeline = self.runtime.pipelines.get(channel_id)
        recorder = pipeline.recorder if pipeline is not None else None
        if pipeline is not None and recorder is not None and view.streaming:
            expected = pipeline.kind_at(self.runtime.clock.now_us()) is not None
            if expected and not view.recording:
                failure = recorder.stats.last_failure_us
        return ChannelState(channel_id, status, view.streaming, view.recording, failure)
