"""The objects service: a user ONNX model plugged in by configuration, the
settings and paths it refuses, and how it follows the channels' settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pydantic
import pytest

from tests.support.onnx_models import probe_yolo
from tests.support.scene import blank, draw_person
from vidicon.base.errors import InvalidInput
from vidicon.core.analytics import AnalyticsSettings
from vidicon.core.clock import Clock
from vidicon.core.events import EventKind, EventQuery
from vidicon.db.database import Database, sqlite_url
from vidicon.db.events import EventStore
from vidicon.services.analytics_objects import ObjectAnalyticsService
from vidicon.services.events import EventService

S = 1_000_000
CLASSES = ["person", "bicycle", "car"]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ObjectAnalyticsService]:
    db = Database(sqlite_url(str(tmp_path / "events.db")))
    await db.migrate()
    events = EventService(EventStore(db), Clock())
    await events.start()
    objects = ObjectAnalyticsService(events, tmp_path, Clock())
    yield objects
    await objects.stop()
    await events.stop()
    await db.close()


def yolo_settings(path: str) -> AnalyticsSettings:
    return AnalyticsSettings.model_validate(
        {"enabled": True, "backends": ["yolo"], "model": {"path": path, "classes": CLASSES}}
    )


async def test_a_user_yolo_model_plugs_in(service: ObjectAnalyticsService, tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    probe_yolo(
        tmp_path / "models" / "probe.onnx",
        [(32.0, 32.0, 20.0, 10.0), (50.0, 40.0, 10.0, 10.0)],
        [[1, 0, 0], [0, 0, 3]],
    )
    await service.configure(7, yolo_settings("probe.onnx"))
    frame = np.zeros((64, 128, 3), np.uint8)
    frame[:, :, 2] = 255  # red
    assert await service.process(7, frame, 0) == []  # first sighting: not confirmed yet
    events = await service.process(7, frame, S // 2)
    assert sorted((e.kind, e.label) for e in events) == [
        (EventKind.OBJECT, "human"),
        (EventKind.OBJECT, "vehicle"),
    ]
    vehicle = next(e for e in events if e.label == "vehicle")
    assert vehicle.attributes["attributes"] == {"vehicleType": "car", "colors": ["red"]}
    assert vehicle.attributes["detector"] == "yolo" and vehicle.channel_id == 7
    assert vehicle.begin_us == 0 and vehicle.end_us is None
    # Switching analytics off finishes what was open.
    await service.configure(7, AnalyticsSettings())
    assert service.configured() == []
    page = await service.events.search(EventQuery(kinds=frozenset({EventKind.OBJECT})))
    assert page.total == 2 and all(e.end_us is not None for e in page.events)


async def test_model_paths_stay_in_the_models_directory(
    service: ObjectAnalyticsService, tmp_path: Path
) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "secret.onnx").write_bytes(b"x")
    for path in ("../secret.onnx", "/etc/passwd", "missing.onnx", "."):
        with pytest.raises(InvalidInput):
            await service.configure(1, yolo_settings(path))
    (tmp_path / "models" / "broken.onnx").write_bytes(b"not onnx")
    with pytest.raises(InvalidInput, match="cannot load"):
        await service.configure(1, yolo_settings("broken.onnx"))
    with pytest.raises(InvalidInput):
        await service.process(1, np.zeros((8, 8, 3), np.uint8), 0)


@pytest.mark.parametrize(
    "bad",
    [
        {"backends": ["yolo"]},  # no model
        {"rules": [{"type": "intrusion", "name": "a", "polygon": [[0, 0], [1, 1]]}]},
        {"rules": [{"type": "lineCrossing", "name": "a", "line": [[0.5, 0.5], [0.5, 0.5]]}]},
        {"rules": [{"type": "loitering", "name": "a", "polygon": [[0, 0], [1, 0], [2, 1]]}]},
        {"rules": [{"type": "teleport", "name": "a"}]},
        {"plates": [{"code": "1", "rect": [0.5, 0.5, 0.2, 0.9]}]},
        {"plates": [{"code": "1", "rect": [0, 0, 1, 1]}, {"code": "1", "rect": [0, 0, 1, 1]}]},
        {"rules": [{"type": "peopleGathering", "name": "a", "min_count": 1,
                    "polygon": [[0, 0], [1, 0], [1, 1]]}]},
    ],
)  # fmt: skip
def test_bad_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        AnalyticsSettings.model_validate({"enabled": True, **bad})


async def test_sync_rebuilds_only_what_changed(
    service: ObjectAnalyticsService, caplog: pytest.LogCaptureFixture
) -> None:
    people = {"enabled": True, "backends": ["person"]}
    frame = blank()
    draw_person(frame, 320, 100, 130)
    await service.sync({3: AnalyticsSettings.model_validate(people)})
    await service.process(3, frame, 0)
    (begun,) = await service.process(3, frame, S // 2)  # the person, confirmed
    # The same settings again (a channel replaced, another refresh): the
    # pipeline lives on, so its tracks and open events do.
    await service.sync({3: AnalyticsSettings.model_validate(people)})
    assert await service.process(3, frame, S) == []
    assert begun.end_us is None
    # Changed settings rebuild it: what was open is finished.
    await service.sync({3: AnalyticsSettings.model_validate(dict(people, min_score=0.6))})
    objects = frozenset({EventKind.OBJECT})
    assert (await service.events.search(EventQuery(kinds=objects))).events[0].end_us is not None
    # Settings that cannot apply are logged once, not retried every refresh;
    # a channel configured by hand is left alone; a channel gone is removed.
    await service.configure(9, AnalyticsSettings.model_validate(people))
    caplog.set_level(logging.ERROR)
    for _ in range(3):
        await service.sync({4: yolo_settings("missing.onnx")})
    assert [r.getMessage() for r in caplog.records if "channel 4" in r.getMessage()] == [
        "channel 4: analytics not started: no model file 'missing.onnx' in the models directory"
    ]
    assert service.configured() == [9]
    assert service.wants(9, 0) and not service.wants(4, 0)
