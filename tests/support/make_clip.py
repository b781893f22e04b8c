"""Generate small pre-encoded H.264 (+ AAC) test clips with ffmpeg.

The clips are meant to be served in a loop by ``rtsp_camera.py``: H.264 without
B-frames and with a fixed GOP (an IDR every ``gop`` frames, no scene-cut
keyframes), so that every loop starts on a keyframe and timestamps stay simple.

Clips are cached: the file name encodes every parameter, so calling
``make_clip`` twice with the same arguments encodes only once.

Usage from the command line::

    python tests/support/make_clip.py OUT_DIR [--width 1920 --height 1080 --fps 30 ...]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["clip_name", "ffmpeg_has_filter", "make_clip"]

# Candidate fonts for drawtext; the first one that exists is used.  drawtext
# also works without ``fontfile`` when ffmpeg was built with fontconfig.
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
)


@functools.cache
def ffmpeg_has_filter(name: str) -> bool:
    """True if the ``ffmpeg`` on PATH provides the libavfilter filter *name*."""
    if shutil.which("ffmpeg") is None:
        return False
    try:
        proc = subprocess.run(
            ["ffmpeg", "-hide_banner", "-h", f"filter={name}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    # Unknown filters print "Unknown filter '<name>'." (and still exit 0 on some builds).
    out = proc.stdout + proc.stderr
    return proc.returncode == 0 and "Unknown filter" not in out and f"Filter {name}" in out


def clip_name(
    *,
    width: int,
    height: int,
    fps: int,
    seconds: float,
    gop: int,
    bitrate_kbps: int,
    audio: bool,
) -> str:
    """File name encoding all clip parameters (used as the cache key)."""
    secs = f"{seconds:g}".replace(".", "p")
    aud = "aac" if audio else "noaudio"
    return f"clip_{width}x{height}_{fps}fps_{secs}s_g{gop}_{bitrate_kbps}k_h264_{aud}.mp4"


def _font_option() -> str:
    for font in _FONT_CANDIDATES:
        if Path(font).is_file():
            # drawtext option values need ':' and '\' escaped; font paths have neither here.
            return f"fontfile={font}:"
    return ""


def _video_filter(width: int, height: int) -> str | None:
    """drawtext filter burning in the frame counter and PTS, or None if unavailable."""
    if not ffmpeg_has_filter("drawtext"):
        return None
    size = max(12, height // 12)
    return (
        f"drawtext={_font_option()}text='frame %{{frame_num}}  t=%{{pts\\:hms}}'"
        f":x=16:y=16:fontsize={size}:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=6"
    )


def _ffmpeg_args(
    out: Path,
    *,
    width: int,
    height: int,
    fps: int,
    seconds: float,
    gop: int,
    bitrate_kbps: int,
    audio: bool,
    drawtext: bool,
) -> list[str]:
    args = [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate={fps}",
    ]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:beep_factor=4:sample_rate=48000"]
    vf = _video_filter(width, height) if drawtext else None
    if vf:
        args += ["-vf", vf]
    profile = "baseline" if width * height <= 1280 * 720 else "main"
    args += [
        "-map",
        "0:v:0",
        "-t",
        f"{seconds:g}",
        "-c:v",
        "libx264",
        "-profile:v",
        profile,
        "-pix_fmt",
        "yuv420p",
        "-preset",
        "veryfast",
        "-tune",
        "zerolatency",
        "-bf",
        "0",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
        "-b:v",
        f"{bitrate_kbps}k",
        "-maxrate",
        f"{bitrate_kbps}k",
        "-bufsize",
        f"{bitrate_kbps * 2}k",
        "-r",
        str(fps),
    ]
    if audio:
        args += ["-map", "1:a:0", "-c:a", "aac", "-b:a", "64k", "-ac", "1", "-ar", "48000"]
    args += ["-movflags", "+faststart", "-f", "mp4", str(out)]
    return args


def make_clip(
    path: Path,
    *,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    seconds: float = 10,
    gop: int = 25,
    bitrate_kbps: int = 800,
    audio: bool = True,
) -> Path:
    """Create (or reuse) an H.264/AAC MP4 test clip and return its path.

    *path* is a directory (created if needed) in which the clip is stored under a
    name derived from the parameters; an existing file of that name is reused.
    If *path* ends in ``.mp4`` it is used as the exact output file name instead
    (still reused when it already exists).
    """
    params: dict[str, Any] = {
        "width": width,
        "height": height,
        "fps": fps,
        "seconds": seconds,
        "gop": gop,
        "bitrate_kbps": bitrate_kbps,
        "audio": audio,
    }
    path = Path(path)
    out = path if path.suffix.lower() == ".mp4" else path / clip_name(**params)
    if out.is_file() and out.stat().st_size > 0:
        return out
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg not found on PATH")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary name and rename, so a concurrent or interrupted run
    # never leaves a truncated clip behind under the cached name.
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.mp4")
    last_err = ""
    for drawtext in (True, False):
        proc = subprocess.run(
            _ffmpeg_args(tmp, drawtext=drawtext, **params),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode == 0 and tmp.is_file() and tmp.stat().st_size > 0:
            tmp.replace(out)
            return out
        last_err = proc.stderr.strip()
        tmp.unlink(missing_ok=True)
    raise RuntimeError(f"ffmpeg failed to create {out}: {last_err[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("out", type=Path, help="output directory (or .mp4 file name)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--gop", type=int, default=None, help="GOP length in frames (default: fps)")
    p.add_argument("--bitrate-kbps", type=int, default=800)
    p.add_argument("--no-audio", action="store_true")
    a = p.parse_args(argv)
    clip = make_clip(
        a.out,
        width=a.width,
        height=a.height,
        fps=a.fps,
        seconds=a.seconds,
        gop=a.gop if a.gop is not None else a.fps,
        bitrate_kbps=a.bitrate_kbps,
        audio=not a.no_audio,
    )
    print(clip)
    return 0


if __name__ == "__main__":
    sys.exit(main())
