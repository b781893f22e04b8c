"""Keep one id per object across frames.

Detections of a frame are matched to live tracks of the same label, best
overlap first (IoU); what overlap cannot match (a fast object at a low frame
rate) is matched by centre distance, relative to the track's size. Unmatched
detections start new tracks; a track not seen for ``lost_after_us`` ends.
A track is *confirmed* after ``min_hits`` sightings, so one spurious box
never becomes an object event. Ids grow from 1 and are never reused while the
tracker lives.

A Kalman or appearance tracker (SORT, DeepSORT, ByteTrack) would hold ids
through crossings better; at the few frames per second analytics run on and
with the detectors bundled here, greedy IoU + distance is enough and has no
model to ship.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from vidicon.detect.backends.base import Box, Detection


@dataclass(slots=True)
class Track:
    id: int
    label: str
    box: Box
    score: float
    first_us: int
    last_us: int
    hits: int = 1
    confirmed: bool = False
    best_score: float = 0.0


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    seen: list[Track]  # tracks updated or started by this frame
    confirmed: list[Track]  # tracks confirmed by this frame (a subset of seen)
    lost: list[Track]  # tracks that ended (not seen for too long)


class Tracker:
    def __init__(
        self,
        *,
        iou_threshold: float = 0.2,
        max_distance: float = 1.5,
        lost_after_us: int = 3_000_000,
        min_hits: int = 2,
    ) -> None:
        self.iou_threshold = iou_threshold
        self.max_distance = max_distance  # in track diagonals
        self.lost_after_us = lost_after_us
        self.min_hits = min_hits
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)

    def update(self, detections: Sequence[Detection], at_us: int) -> TrackUpdate:
        pairs = self._match(detections)
        seen: list[Track] = []
        confirmed: list[Track] = []
        matched = set()
        for det_index, track in pairs:
            det = detections[det_index]
            matched.add(det_index)
            track.box, track.score, track.last_us = det.box, det.score, at_us
            track.best_score = max(track.best_score, det.score)
            track.hits += 1
            seen.append(track)
        for i, det in enumerate(detections):
            if i in matched:
                continue
            track = Track(next(self._ids), det.label, det.box, det.score, at_us, at_us)
            track.best_score = det.score
            self.tracks[track.id] = track
            seen.append(track)
        for track in seen:
            if not track.confirmed and track.hits >= self.min_hits:
                track.confirmed = True
                confirmed.append(track)
        lost = [t for t in self.tracks.values() if at_us - t.last_us > self.lost_after_us]
        for track in lost:
            del self.tracks[track.id]
        return TrackUpdate(seen, confirmed, lost)

    def flush(self) -> list[Track]:
        """End every track (the stream stopped)."""
        lost = list(self.tracks.values())
        self.tracks.clear()
        return lost

    def _match(self, detections: Sequence[Detection]) -> list[tuple[int, Track]]:
        candidates: list[tuple[int, float, int, int]] = []  # (pass, cost, det, track)
        for i, det in enumerate(detections):
            for track in self.tracks.values():
                if track.label != det.label:
                    continue
                iou = track.box.iou(det.box)
                if iou >= self.iou_threshold:
                    candidates.append((0, -iou, i, track.id))
                    continue
                distance = _centre_distance(track.box, det.box)
                if distance <= self.max_distance:
                    candidates.append((1, distance, i, track.id))
        pairs: list[tuple[int, Track]] = []
        used_dets: set[int] = set()
        used_tracks: set[int] = set()
        for _, _, det_index, track_id in sorted(candidates):
            if det_index in used_dets or track_id in used_tracks:
                continue
            used_dets.add(det_index)
            used_tracks.add(track_id)
            pairs.append((det_index, self.tracks[track_id]))
        return pairs


def _centre_distance(a: Box, b: Box) -> float:
    """Distance between centres in units of ``a``'s diagonal."""
    (ax, ay), (bx, by) = a.center, b.center
    diagonal = max(1.0, (a.w**2 + a.h**2) ** 0.5)
    return float(((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 / diagonal)
