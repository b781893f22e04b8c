"""Subtitle files (WebVTT, SubRip, SAMI) that show the date and time of the footage.

A cue is a span of the media timeline and its text. :func:`clock_text`
writes a local date and time the way the chosen language reads it;
:func:`render` writes the cues in one of the three formats.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

SubtitleFormat = Literal["VTT", "SRT", "SMI"]
FORMATS: tuple[SubtitleFormat, ...] = ("VTT", "SRT", "SMI")
EXTENSIONS: dict[SubtitleFormat, str] = {"VTT": "vtt", "SRT": "srt", "SMI": "smi"}
MEDIA_TYPES: dict[SubtitleFormat, str] = {
    "VTT": "text/vtt",
    "SRT": "application/x-subrip",
    "SMI": "application/smil",
}

# Dates as each language writes them; ISO 8601 order where that is usual, and
# for English, so that footage used as evidence is never read the wrong way.
_CLOCK = {
    "en-US": "%Y-%m-%d %H:%M:%S",
    "ko-KR": "%Y년 %m월 %d일 %H:%M:%S",
    "es-ES": "%d/%m/%Y %H:%M:%S",
    "zh-CN": "%Y年%m月%d日 %H:%M:%S",
    "zh-TW": "%Y年%m月%d日 %H:%M:%S",
}
LANGUAGES = tuple(_CLOCK)


@dataclass(frozen=True, slots=True)
class Cue:
    start_ms: int  # on the media timeline
    end_ms: int
    text: str


def clock_text(local: datetime, language: str) -> str:
    """The date and time of ``local`` (already in the zone to show), to the second."""
    return local.strftime(_CLOCK.get(language, _CLOCK["en-US"]))


def _stamp(ms: int, separator: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def vtt(cues: Sequence[Cue]) -> str:
    lines = ["WEBVTT", ""]
    for cue in cues:
        lines += [f"{_stamp(cue.start_ms, '.')} --> {_stamp(cue.end_ms, '.')}", cue.text, ""]
    return "\n".join(lines)


def srt(cues: Sequence[Cue]) -> str:
    lines: list[str] = []
    for number, cue in enumerate(cues, start=1):
        lines += [
            str(number),
            f"{_stamp(cue.start_ms, ',')} --> {_stamp(cue.end_ms, ',')}",
            cue.text,
            "",
        ]
    return "\r\n".join(lines)


def smi(cues: Sequence[Cue], title: str, language: str) -> str:
    """SAMI: one SYNC per cue, and an empty one where a cue ends before the next starts."""
    cls = language.replace("-", "").upper() + "CC"
    lines = [
        "<SAMI>",
        "<HEAD>",
        f"<TITLE>{html.escape(title)}</TITLE>",
        '<STYLE TYPE="text/css">',
        "<!--",
        "P { margin-left: 8pt; margin-right: 8pt; margin-bottom: 2pt; margin-top: 2pt;",
        "    text-align: center; font-size: 12pt; font-family: Arial, sans-serif; }",
        f".{cls} {{ Name: {language}; lang: {language}; SAMIType: CC; }}",
        "-->",
        "</STYLE>",
        "</HEAD>",
        "<BODY>",
    ]
    for index, cue in enumerate(cues):
        lines.append(
            f"<SYNC Start={cue.start_ms}><P Class={cls}>{html.escape(cue.text)}</P></SYNC>"
        )
        following = cues[index + 1] if index + 1 < len(cues) else None
        if following is None or following.start_ms > cue.end_ms:
            lines.append(f"<SYNC Start={cue.end_ms}><P Class={cls}>&nbsp;</P></SYNC>")
    lines += ["</BODY>", "</SAMI>", ""]
    return "\r\n".join(lines)


def render(fmt: SubtitleFormat, cues: Sequence[Cue], title: str, language: str) -> bytes:
    """The file's bytes: UTF-8; SubRip and SAMI with a byte order mark, which
    Windows players need to see that the text is UTF-8 (Korean, Chinese)."""
    if fmt == "VTT":
        return vtt(cues).encode()
    if fmt == "SRT":
        return b"\xef\xbb\xbf" + srt(cues).encode()
    return b"\xef\xbb\xbf" + smi(cues, title, language).encode()
