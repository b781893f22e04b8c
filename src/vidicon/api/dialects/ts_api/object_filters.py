"""TS-API object attributes (``/api/enum?what=objectAttr``) and the object
search's filters (``/api/find?what=object``).

Object events (kind ``object``) carry the object type as their label and
the spec's attributes at the top level of their attributes: ``gender``,
``age``, ``hat``, ``glasses``, ``mask``, ``bag``, ``clothes`` (a list of
``{"type": "tops"|"bottoms", "length", "colors": [...]}``), ``vehicleType``,
``colors``; beside them ``objectId``, ``parentId`` and ``likelihood``.

Filters combine with AND: ``topClothes=red,blue`` finds tops that show both
colours, ``vehicleType=car,yellow`` yellow cars, ``topClothes=short,white``
short white tops. Booleans are ``true``/``false`` or ``1``/``0``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vidicon.base.errors import InvalidInput
from vidicon.core.events import EventQuery, JsonValue

COLORS = ["brown", "black", "red", "orange", "yellow", "green", "cyan", "blue", "purple",
          "magenta", "gray", "pink", "beige", "white", "other"]  # fmt: skip
VEHICLE_TYPES = ["car", "truck", "bus", "bicycle", "motorcycle", "train"]
GENDERS = ["female", "male"]
AGES = ["young", "adult", "middle", "senior"]
LENGTHS = ["short", "long"]
BOOL = [True, False]
OBJECT_TYPES = ["face", "human", "vehicle"]
OBJECT_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "face": {"age": AGES, "gender": GENDERS, "glasses": BOOL, "hat": BOOL, "mask": BOOL},
    "human": {
        "bag": BOOL,
        "clothes": {"type": ["tops", "bottoms"], "length": LENGTHS, "colors": COLORS},
        "gender": GENDERS,
        "hat": BOOL,
    },
    "vehicle": {"colors": COLORS, "vehicleType": VEHICLE_TYPES},
}
# Search parameter -> the object types it applies to.
_PARAMETERS = {
    "gender": {"face", "human"},
    "age": {"face"},
    "hat": {"face", "human"},
    "glasses": {"face"},
    "mask": {"face"},
    "bag": {"human"},
    "topClothes": {"human"},
    "bottomClothes": {"human"},
    "vehicleType": {"vehicle"},
}
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def _choice(name: str, value: str, allowed: list[str]) -> str:
    found = value.strip().lower()
    if found not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)}", name)
    return found


def _boolean(name: str, value: str) -> bool:
    found = value.strip().lower()
    if found in _TRUE:
        return True
    if found in _FALSE:
        return False
    raise InvalidInput(f"{name} must be true or false (1 or 0)", name)


def _parts(name: str, value: str) -> list[str]:
    parts = [p.strip().lower() for p in value.split(",") if p.strip()]
    if not parts or len(parts) > 16:
        raise InvalidInput(f"{name} needs 1-16 comma-separated values", name)
    return parts


def _clothes(name: str, value: str) -> dict[str, JsonValue]:
    wanted: dict[str, JsonValue] = {"type": "tops" if name == "topClothes" else "bottoms"}
    colors: list[str] = []
    for part in _parts(name, value):
        if part in LENGTHS:
            if "length" in wanted and wanted["length"] != part:
                raise InvalidInput(f"{name} takes one length", name)
            wanted["length"] = part
        elif part in COLORS:
            colors.append(part)
        else:
            raise InvalidInput(
                f"{name} takes short or long and colours ({', '.join(COLORS)})", name
            )
    if colors:
        wanted["colors"] = sorted(set(colors))
    return wanted


def object_query(query: EventQuery, params: Any) -> EventQuery:
    """``query`` with objectType and the attribute filters of ``params``."""
    kind = params.get("objectType")
    types = set(OBJECT_TYPES)
    label = None
    if kind is not None and kind.strip():
        label = _choice("objectType", kind, OBJECT_TYPES)
        types = {label}
    equals: dict[str, JsonValue] = {}
    contains: list[tuple[str, JsonValue]] = []
    for name, applies in _PARAMETERS.items():
        value = params.get(name)
        if value is None or value == "":
            continue
        if not applies & types:
            raise InvalidInput(f"{name} does not apply to objectType={label}", name)
        if name == "gender":
            equals[name] = _choice(name, value, GENDERS)
        elif name == "age":
            equals[name] = _choice(name, value, AGES)
        elif name in {"topClothes", "bottomClothes"}:
            contains.append(("clothes", _clothes(name, value)))
        elif name == "vehicleType":
            for part in _parts(name, value):
                if part in VEHICLE_TYPES:
                    if equals.get("vehicleType", part) != part:
                        raise InvalidInput("vehicleType takes one vehicle type", name)
                    equals["vehicleType"] = part
                elif part in COLORS:
                    contains.append(("colors", part))
                else:
                    raise InvalidInput(
                        f"vehicleType takes one of {', '.join(VEHICLE_TYPES)} and colours", name
                    )
        else:
            equals[name] = _boolean(name, value)
    return dataclasses.replace(
        query,
        label=label,
        attributes={**query.attributes, **equals},
        contains=query.contains + tuple(contains),
    )
