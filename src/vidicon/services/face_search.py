"""Face search: stored faces that resemble the face on a picture.

The rules are the object search's (:class:`EventSearch`): signed in, the
Playback right, and only channels the user may see. The searched-for face
is the largest one OpenCV's Haar cascade finds on the picture; a picture
without one is refused (InvalidInput), since "nothing matched" would be a
lie. It is compared with the LBPH descriptors that face object events keep
(:mod:`vidicon.detect.face_descriptor`).

The work is bounded: face events in the range are read newest first, a
page at a time, and at most ``MAX_CANDIDATES`` of them are compared (a
search over older faces narrows the time range). Decoding, detection and
the comparisons run in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vidicon.base.errors import InvalidInput
from vidicon.core.events import FACE_DESCRIPTOR, Event, EventKind, EventQuery
from vidicon.detect import face_descriptor
from vidicon.detect.backends.base import Detector
from vidicon.detect.uploaded_image import MAX_BYTES, TYPES, BadImage, decode_picture
from vidicon.services.auth import User
from vidicon.services.event_search import EventSearch

MAX_CANDIDATES = 10_000  # stored faces compared at most, the newest first
DEFAULT_THRESHOLD = 70  # percent
MAX_PICTURE_BYTES = MAX_BYTES
PICTURE_TYPES = tuple(TYPES)  # content types of the photos searched with
_PAGE = 500


@dataclass(frozen=True, slots=True)
class FaceMatch:
    event: Event
    similarity: float  # percent, two decimals


@dataclass(frozen=True, slots=True)
class FaceMatches:
    total: int  # matches at or above the threshold
    offset: int
    matches: list[FaceMatch]  # best first, one page
    compared: int  # stored faces compared
    truncated: bool  # the range held more faces than MAX_CANDIDATES


class FaceSearch:
    def __init__(self, search: EventSearch, detector: Detector | None = None) -> None:
        self.search = search
        self._detector = detector
        self._lock = threading.Lock()  # one detection at a time (shared cascade)

    async def find(
        self,
        user: User,
        query: EventQuery,
        picture: bytes,
        content_type: str,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> FaceMatches:
        """Faces of ``query``'s range and channels at least ``threshold`` %
        like the largest face on ``picture``; paged by ``query``'s offset and
        limit, best first (newer first among equals)."""
        self.search.check_objects(user)
        self.search.visible(user, query)  # Forbidden for channels the user may not see
        probe = await asyncio.to_thread(self._probe, picture, content_type)
        candidates = dataclasses.replace(
            query, kinds=frozenset({EventKind.OBJECT}), label="face", ascending=False
        )
        found: list[FaceMatch] = []
        seen: set[int | None] = set()
        compared = 0
        offset = 0
        truncated = False
        while compared < MAX_CANDIDATES:
            page = await self.search.search(
                user, dataclasses.replace(candidates, offset=offset, limit=_PAGE)
            )
            offset += len(page.events)
            batch = [e for e in page.events if e.id not in seen]
            seen.update(e.id for e in batch)
            batch = batch[: MAX_CANDIDATES - compared]
            compared += len(batch)
            found.extend(await asyncio.to_thread(_compare, probe, batch, threshold))
            if not page.events or offset >= page.total:
                break
            if compared >= MAX_CANDIDATES:
                truncated = True
        found.sort(key=lambda m: (-m.similarity, -m.event.begin_us))
        window = found[query.offset : query.offset + query.limit]
        return FaceMatches(len(found), query.offset, window, compared, truncated)

    def _probe(self, picture: bytes, content_type: str) -> face_descriptor.Probe:
        try:
            frame = decode_picture(picture, content_type)
        except BadImage as exc:
            raise InvalidInput(str(exc), "image") from None
        with self._lock:
            box = face_descriptor.largest_face(frame, self._face_detector())
        if box is None:
            raise InvalidInput("no face was found on the picture", "image")
        try:
            return face_descriptor.probe(frame, box)
        except ValueError as exc:
            raise InvalidInput(str(exc), "image") from None

    def _face_detector(self) -> Detector:
        if self._detector is None:
            from vidicon.detect.backends.opencv_face import HaarFaceDetector

            self._detector = HaarFaceDetector()
        return self._detector


def _compare(
    probe: face_descriptor.Probe, events: list[Event], threshold: float
) -> list[FaceMatch]:
    described = [
        (e, d)
        for e in events
        if (d := face_descriptor.decode(e.attributes.get(FACE_DESCRIPTOR))) is not None
    ]
    if not described:
        return []
    stored: npt.NDArray[np.uint8] = np.stack([d for _, d in described])
    percent = face_descriptor.similarities(probe, stored)
    pairs = zip(described, percent, strict=True)
    return [FaceMatch(e, float(p)) for (e, _), p in pairs if p >= threshold]
