"""What a user may do, beside seeing channels.

One set of rights serves every API surface. The names are TS-API's
``accessRights2`` keys, which the other vendors' permission models map onto.
Administrators hold every right. Watching live video needs no right beyond
signing in (and access to the channel).
"""

from __future__ import annotations

from enum import StrEnum


class Right(StrEnum):
    DATA_EXPORT = "DataExport"  # export video and images
    CONTROL = "Control"  # PTZ, presets, relays, aux outputs, camera reboot
    SETTINGS = "Settings"  # change configuration: channels, users, system
    PLAYBACK = "Playback"  # search and play back recordings
    LPR = "LPR"  # licence plate search
    REMOTE = "Remote"  # use the server from another machine than its own


ALL_RIGHTS: frozenset[Right] = frozenset(Right)


def parse_rights(names: object) -> frozenset[Right]:
    """Rights from their names (a list, or a comma-separated string);
    ValueError names the first unknown one."""
    if isinstance(names, str):
        items = [n.strip() for n in names.split(",") if n.strip()]
    elif isinstance(names, list | tuple | set | frozenset):
        items = [str(n) for n in names]
    else:
        raise ValueError("rights must be a list of names")
    by_lower = {r.value.lower(): r for r in Right}
    rights = set()
    for item in items:
        right = by_lower.get(item.lower())
        if right is None:
            raise ValueError(f"unknown right {item!r}")
        rights.add(right)
    return frozenset(rights)
