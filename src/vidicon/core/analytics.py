"""Per-channel video analytics settings: detectors, rules and plate zones.

Coordinates are normalized to the picture (0..1, x right, y down) so one
setting holds for every stream resolution. Stored with the channel (an
additive field of :class:`~vidicon.core.channel.ChannelSettings`); the
objects service reads it and builds the detectors, tracker and rules.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Coordinate = Annotated[float, Field(ge=0.0, le=1.0)]
NormPoint = tuple[Coordinate, Coordinate]
ObjectType = Literal["face", "human", "vehicle"]
Backend = Literal["person", "face", "yolo"]


def _humans() -> list[ObjectType]:
    return ["human"]


def _all_types() -> list[ObjectType]:
    return ["face", "human", "vehicle"]


def _bundled() -> list[Backend]:
    return ["person", "face"]


_NAME = re.compile(r"^[A-Za-z0-9 _.:-]{1,48}$")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("names are 1-48 letters, digits, spaces or _ . : -")
    return value


class UserModel(BaseModel):
    """A YOLO-style ONNX detector the user provides (see detect/backends/onnx_yolo.py)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        min_length=1,
        max_length=255,
        description="file name under <data_dir>/models (no directories outside it)",
    )
    classes: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=1000, description="class names in the model's output order"
    )
    input_size: int | None = Field(default=None, ge=32, le=2048)
    score_threshold: float = Field(default=0.4, gt=0, le=1)
    iou_threshold: float = Field(default=0.45, gt=0, le=1)


class _RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    objects: list[ObjectType] = Field(default_factory=list, description="empty: every type")

    _check_name = field_validator("name")(_name)


class IntrusionRuleSettings(_RuleBase):
    type: Literal["intrusion"] = "intrusion"
    polygon: list[NormPoint] = Field(min_length=3, max_length=64)


class LoiteringRuleSettings(_RuleBase):
    type: Literal["loitering"] = "loitering"
    polygon: list[NormPoint] = Field(min_length=3, max_length=64)
    dwell_s: float = Field(default=10.0, gt=0, le=86400)


class LineCrossingRuleSettings(_RuleBase):
    type: Literal["lineCrossing"] = "lineCrossing"
    line: tuple[NormPoint, NormPoint]
    direction: Literal["A->B", "B->A", "both"] = Field(
        default="both", description="side A is left of the line looking from its first point"
    )

    @model_validator(mode="after")
    def _two_points(self) -> LineCrossingRuleSettings:
        if self.line[0] == self.line[1]:
            raise ValueError("a line needs two different points")
        return self


class GatheringRuleSettings(_RuleBase):
    type: Literal["peopleGathering"] = "peopleGathering"
    polygon: list[NormPoint] = Field(min_length=3, max_length=64)
    min_count: int = Field(default=3, ge=2, le=1000)
    min_duration_s: float = Field(default=5.0, ge=0, le=86400)
    objects: list[ObjectType] = Field(default_factory=_humans)


RuleSettings = Annotated[
    IntrusionRuleSettings
    | LoiteringRuleSettings
    | LineCrossingRuleSettings
    | GatheringRuleSettings,
    Field(discriminator="type"),
]


class PlateZoneSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="zone code shown as srcCode/deviceCode, e.g. 1-1-1")
    name: str = ""
    rect: tuple[Coordinate, Coordinate, Coordinate, Coordinate] = Field(
        description="x0, y0, x1, y1 (normalized)"
    )

    _check_code = field_validator("code")(_name)

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if len(value) > 64 or any(ord(c) < 32 for c in value):
            raise ValueError("name must be printable text of at most 64 characters")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> PlateZoneSettings:
        x0, y0, x1, y1 = self.rect
        if x0 >= x1 or y0 >= y1:
            raise ValueError("rect must be x0 < x1 and y0 < y1")
        return self


class AnalyticsSettings(BaseModel):
    """Object detection, rules and plate reading for one channel (off by default)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    backends: list[Backend] = Field(
        default_factory=_bundled,
        description="person: OpenCV HOG; face: OpenCV Haar; yolo: the user model",
    )
    objects: list[ObjectType] = Field(default_factory=_all_types, description="types reported")
    min_score: float = Field(default=0.5, ge=0, le=1)
    model: UserModel | None = None
    rules: list[RuleSettings] = Field(default_factory=list, max_length=32)
    plates: list[PlateZoneSettings] = Field(default_factory=list, max_length=36)
    plate_repeat_s: float = Field(
        default=10.0, ge=0, le=3600, description="same plate, same zone: reported again after"
    )
    fps: float = Field(default=2.0, gt=0, le=30, description="frames analysed per second")

    @model_validator(mode="after")
    def _consistent(self) -> AnalyticsSettings:
        if "yolo" in self.backends and self.model is None:
            raise ValueError("the yolo backend needs a model")
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("rule names must be unique")
        codes = [z.code for z in self.plates]
        if len(set(codes)) != len(codes):
            raise ValueError("plate zone codes must be unique")
        return self
