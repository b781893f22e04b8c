"""Orders a stream's packets so every part carries the audio of its own time span.

:class:`~vidicon.media.outputs.live_fmp4.LiveMuxer` puts the audio that came
before a video frame into that frame's fragment. Audio usually arrives a little
after the video of the same instant (encoder delay, interleaving), so without
help the audio of a part's last frames lands in the next part, and every part
and segment ends with video but no audio. hls.js then sees the buffer end short
of the segment's end and loads the segment again, and again.

:class:`TrackAligner` holds video frame *i* until frame *i+1* is known and the
audio up to frame *i+1*'s time has arrived, then releases that audio followed
by frame *i*: fragment *i* holds exactly the audio that plays under it. It never
holds video for more than ``max_audio_lag_us`` waiting for audio (a camera whose
audio stalls or stops costs that once, not on every part).
"""

from __future__ import annotations

from collections import deque

from vidicon.core.media import Packet, Track
from vidicon.media.hub import HubItem, StreamEnd, StreamStart

MAX_AUDIO_LAG_US = 500_000

# An item to hand on, and for a video packet the video packet after it (None when
# the stream ends or is cut: the frame's end is not known).
Released = tuple[HubItem, Packet | None]


class TrackAligner:
    def __init__(self, max_audio_lag_us: int = MAX_AUDIO_LAG_US) -> None:
        self.max_audio_lag_us = max_audio_lag_us
        self._sample_rate: int | None = None  # None: the stream has no audio
        self._video: deque[Packet] = deque()
        self._audio: deque[Packet] = deque()
        self._audio_until_us: int | None = None  # end of the newest audio frame

    def push(self, item: HubItem) -> list[Released]:
        if isinstance(item, StreamStart | StreamEnd):
            released = self.flush()
            audio = item.info.audio if isinstance(item, StreamStart) else None
            self._sample_rate = audio.sample_rate if audio is not None else None
            self._audio_until_us = None
            released.append((item, None))
            return released
        if item.track is Track.AUDIO:
            if self._sample_rate is None:
                return []
            self._audio.append(item)
            duration_us = item.duration * 1_000_000 // self._sample_rate
            end = item.time_us + duration_us
            self._audio_until_us = max(end, self._audio_until_us or end)
        else:
            self._video.append(item)
        return self._release()

    def _audio_ready(self, end_us: int) -> bool:
        if self._sample_rate is None or self._audio_until_us is None:
            return True
        return self._audio_until_us >= end_us or (
            end_us - self._audio_until_us > self.max_audio_lag_us
        )

    def _release(self) -> list[Released]:
        released: list[Released] = []
        while len(self._video) >= 2:
            end_us = self._video[1].time_us
            if not self._audio_ready(end_us):
                break
            while self._audio and self._audio[0].time_us < end_us:
                released.append((self._audio.popleft(), None))
            released.append((self._video.popleft(), self._video[0]))
        if not self._video:  # audio only so far: nothing to wait for
            released.extend((audio, None) for audio in self._audio)
            self._audio.clear()
        return released

    def flush(self) -> list[Released]:
        """Everything held, in order; the last video frame has no known successor."""
        released: list[Released] = []
        while self._video:
            video = self._video.popleft()
            following = self._video[0] if self._video else None
            if following is not None:
                while self._audio and self._audio[0].time_us < following.time_us:
                    released.append((self._audio.popleft(), None))
            else:
                released.extend((audio, None) for audio in self._audio)
                self._audio.clear()
            released.append((video, following))
        released.extend((audio, None) for audio in self._audio)
        self._audio.clear()
        return released
