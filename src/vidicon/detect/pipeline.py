"""One channel's analysis of a frame: detect, track, describe, apply rules, read plates.

It runs in a worker thread and touches no event bus: it returns *actions*
(begin a lasting event, finish one, publish a moment) that the service
carries out on the event loop, in order. Frames are BGR uint8 (see
``backends.base``); motion regions are ``x, y, w, h`` pixels, ``None`` for
the whole frame.

Events made here:

* ``object``: one lasting event per confirmed track (begins at its first
  sighting, ends when lost); code and label are the TS-API object type,
  attributes are TS-API's (``objId``, ``type``, ``likelihood`` in %,
  ``attributes`` with only what the pixels tell, ``parentId`` for a face
  inside a person) plus ``box`` (normalized x, y, w, h) and ``detector``;
  a face also keeps ``faceDescriptor`` (:mod:`.face_descriptor`, for face
  search; a private attribute no API answer shows).
* rule events (``intrusion``, ``loitering``, ``peopleGathering`` lasting;
  ``lineCrossing`` a moment), code = the rule's name, label = object type.
* ``lpr`` moments, label = the plate, code ``recognized``, with ``score``,
  ``roi``, ``srcCode`` and ``srcName`` as TS-API's carNo log has them.

Snapshots are encoded here and handed to ``store_image`` (the service's
event image store), which returns the path the event keeps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vidicon.core.events import Event, EventKind, JsonValue
from vidicon.detect import attributes as attrs
from vidicon.detect import face_descriptor
from vidicon.detect.backends.base import Box, Detection, Detector, Frame
from vidicon.detect.plates import PlateDeduper, PlateReader
from vidicon.detect.regions import Region, detect_in_regions
from vidicon.detect.rules import Rule, RuleHit, TrackPoint
from vidicon.detect.snapshots import encode_jpeg
from vidicon.detect.tracker import Track, Tracker

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Begin:
    key: str
    event: Event


@dataclass(frozen=True, slots=True)
class Finish:
    key: str
    end_us: int


@dataclass(frozen=True, slots=True)
class Moment:
    event: Event


Action = Begin | Finish | Moment
# Stores a JPEG taken on a channel at a time; returns the path an event keeps.
ImageStore = Callable[[bytes, int, int], str]


@dataclass(frozen=True, slots=True)
class Found:
    detection: Detection
    object_type: str
    detector: str


class ChannelPipeline:
    def __init__(
        self,
        channel_id: int,
        store_image: ImageStore,
        detectors: Sequence[Detector],
        *,
        object_types: frozenset[str],
        min_score: float,
        rules: Sequence[Rule] = (),
        plates: PlateReader | None = None,
        plate_repeat_us: int = 10_000_000,
        tracker: Tracker | None = None,
    ) -> None:
        self.channel_id = channel_id
        self.store_image = store_image
        self.detectors = list(detectors)
        self.object_types = object_types
        self.min_score = min_score
        self.rules = list(rules)
        self.plates = plates
        self.deduper = PlateDeduper(plate_repeat_us)
        self.tracker = tracker or Tracker()
        self._types: dict[int, tuple[str, str]] = {}  # track id -> (object type, detector)
        self._objects: set[int] = set()  # confirmed tracks with an open object event
        self._snapshots = 0

    # --- the frame ---------------------------------------------------------

    def analyse(self, frame: Frame, at_us: int, regions: Sequence[Region] | None) -> list[Action]:
        found = self._detect(frame, regions)
        update = self.tracker.update([f.detection for f in found], at_us)
        # A track holds the very Box object of the detection that updated it.
        by_box = {id(f.detection.box): f for f in found}
        for track in update.seen:
            match = by_box.get(id(track.box))
            if track.id not in self._types and match is not None:
                self._types[track.id] = (match.object_type, match.detector)
        actions: list[Action] = []
        for track in update.confirmed:
            actions.append(self._object_begins(frame, track))
        lost_confirmed = [t.id for t in update.lost if t.id in self._objects]
        for track in update.lost:
            actions.extend(self._object_ends(track))
        height, width = frame.shape[:2]
        points = [
            TrackPoint(t.id, self._types[t.id][0], _anchor(t, self._types[t.id][0], width, height))
            for t in self.tracker.tracks.values()
            if t.confirmed and t.id in self._types
        ]
        for rule in self.rules:
            for hit in rule.update(points, lost_confirmed, at_us):
                actions.append(self._rule_action(frame, hit))
        if self.plates is not None and _plates_due(self.plates, regions, width, height):
            actions.extend(self._read_plates(frame, at_us))
        return actions

    def close(self, at_us: int) -> list[Action]:
        """Finish everything still open (the channel stopped or changed)."""
        actions: list[Action] = []
        for track in self.tracker.flush():
            actions.extend(self._object_ends(track))
        for rule in self.rules:
            actions.extend(self._rule_action(None, hit) for hit in rule.close(at_us))
        return actions

    # --- steps -------------------------------------------------------------

    def _detect(self, frame: Frame, regions: Sequence[Region] | None) -> list[Found]:
        found = []
        for detector in self.detectors:
            for detection in detect_in_regions(detector, frame, regions):
                kind = attrs.object_type(detection.label)
                if kind in self.object_types and detection.score >= self.min_score:
                    found.append(Found(detection, kind, detector.name))
        return found

    def _object_begins(self, frame: Frame, track: Track) -> Action:
        kind, detector = self._types.get(track.id, ("human", "?"))
        height, width = frame.shape[:2]
        described: dict[str, object] = {}
        if kind == "human":
            described = attrs.person_attributes(frame, track.box)
        elif kind == "vehicle":
            described = attrs.vehicle_attributes(frame, track.box, track.label)
        # The spec's attributes twice: nested as TS-API's object topic sends
        # them, and at the top level where event search filters them
        # (api/dialects/ts_api/object_filters.py), with ``objectId`` beside.
        attributes: dict[str, JsonValue] = {
            **described,
            "objId": track.id,
            "objectId": track.id,
            "type": kind,
            "likelihood": round(track.best_score * 100, 2),
            "attributes": described,
            "box": _normalized(track.box, width, height),
            "detector": detector,
        }
        if kind == "face":
            parent = self._parent_of(track)
            if parent is not None:
                attributes["parentId"] = parent
            descriptor = _face_descriptor(frame, track.box)
            if descriptor is not None:
                attributes[face_descriptor.ATTRIBUTE] = descriptor
        self._objects.add(track.id)
        image = self._snapshot(frame, track.box, track.last_us, f"object-{kind}")
        event = Event(
            EventKind.OBJECT,
            kind,
            track.first_us,
            self.channel_id,
            label=kind,
            attributes=attributes,
            images=image,
        )
        return Begin(f"object:{track.id}", event)

    def _object_ends(self, track: Track) -> list[Action]:
        self._types.pop(track.id, None)
        if track.id not in self._objects:
            return []
        self._objects.discard(track.id)
        return [Finish(f"object:{track.id}", track.last_us)]

    def _parent_of(self, face: Track) -> int | None:
        for other in self.tracker.tracks.values():
            is_human = self._types.get(other.id, ("",))[0] == "human"
            if other.confirmed and is_human and other.box.contains(face.box, face.box.w * 0.2):
                return other.id
        return None

    def _rule_action(self, frame: Frame | None, hit: RuleHit) -> Action:
        key = f"rule:{hit.key}"
        if hit.phase == "end":
            return Finish(key, hit.at_us)
        images = () if frame is None else self._snapshot(frame, None, hit.at_us, hit.kind)
        attributes: dict[str, JsonValue] = {**hit.attributes, "objIds": list(hit.track_ids)}
        if hit.label is not None:
            attributes["type"] = hit.label
        event = Event(
            EventKind(hit.kind),
            hit.rule,
            hit.at_us,
            self.channel_id,
            label=hit.label,
            attributes=attributes,
            images=images,
        )
        return Begin(key, event) if hit.phase == "begin" else Moment(event)

    def _read_plates(self, frame: Frame, at_us: int) -> list[Action]:
        assert self.plates is not None
        actions: list[Action] = []
        for read in self.plates.read(frame):
            if not self.deduper.fresh(read.zone.code, read.text, at_us):
                continue
            box = read.box
            event = Event(
                EventKind.LPR,
                "recognized",
                at_us,
                self.channel_id,
                label=read.text,
                attributes={
                    "score": round(read.score * 100),
                    "roi": {
                        "offset": [round(box.x), round(box.y)],
                        "size": [round(box.w), round(box.h)],
                    },
                    "srcCode": read.zone.code,
                    "srcName": read.zone.name,
                    "raw": read.raw,
                },
                images=self._snapshot(frame, None, at_us, "plate"),
            )
            actions.append(Moment(event))
        return actions

    def _snapshot(self, frame: Frame, box: Box | None, at_us: int, tag: str) -> tuple[str, ...]:
        self._snapshots += 1
        try:
            path = self.store_image(encode_jpeg(frame, box), self.channel_id, at_us)
        except (OSError, ValueError):
            log.exception("channel %d: could not store a %s snapshot", self.channel_id, tag)
            return ()
        return (path,)


def _face_descriptor(frame: Frame, box: Box) -> str | None:
    try:
        return face_descriptor.encode(face_descriptor.describe(frame, box))
    except ValueError:
        return None  # too small to describe


def _anchor(track: Track, kind: str, width: int, height: int) -> tuple[float, float]:
    """Where an object is, normalized: feet (bottom centre) for people and
    vehicles, the centre for anything else."""
    cx, cy = track.box.center
    y = track.box.y + track.box.h if kind in ("human", "vehicle") else cy
    return (cx / width, y / height)


def _normalized(box: Box, width: int, height: int) -> list[JsonValue]:
    return [
        round(box.x / width, 4),
        round(box.y / height, 4),
        round(box.w / width, 4),
        round(box.h / height, 4),
    ]


def _plates_due(
    reader: PlateReader, regions: Sequence[Region] | None, width: int, height: int
) -> bool:
    """Read plates when something moved in a plate zone (or no regions are known)."""
    if regions is None:
        return True
    for zone in reader.zones:
        z = zone.pixels(width, height)
        for x, y, w, h in regions:
            if x < z.x + z.w and z.x < x + w and y < z.y + z.h and z.y < y + h:
                return True
    return False
