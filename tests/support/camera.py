"""Test helper: run ``rtsp_camera.py`` (a looping RTSP test camera) as a subprocess.

The camera needs the GStreamer GObject-introspection bindings, which live in
the Debian system Python rather than the project venv, so it is started with
``/usr/bin/python3`` (override with the ``VIDICON_GST_PYTHON`` environment
variable).  This module itself imports nothing from ``gi``.

Example::

    from tests.support.camera import RtspCamera
    from tests.support.make_clip import make_clip

    if not RtspCamera.is_available():
        pytest.skip(RtspCamera.unavailable_reason())
    clip = make_clip(tmp_dir, seconds=5)
    with RtspCamera(clip, mounts=2, user="admin", password="secret") as cam:
        url = cam.url(1)  # rtsp://admin:secret@127.0.0.1:PORT/cam1
        ...
        cam.stop()  # camera goes away ...
        cam.start()  # ... and comes back on the same port
"""

from __future__ import annotations

import functools
import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import quote

__all__ = ["CAMERA_SCRIPT", "RtspCamera", "system_python"]

CAMERA_SCRIPT = Path(__file__).resolve().with_name("rtsp_camera.py")
READY_TIMEOUT_S = 20.0
PORT_FREE_TIMEOUT_S = 10.0

_PROBE = """
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
missing = [e for e in ("filesrc", "qtdemux", "h264parse", "aacparse", "appsrc", "appsink",
                       "rtph264pay", "rtpmp4gpay", "rtpbin", "udpsink")
           if Gst.ElementFactory.find(e) is None]
if missing:
    raise SystemExit("missing GStreamer elements: " + ", ".join(missing))
print("ok")
"""


def system_python() -> str:
    """Interpreter used to run the camera (must have gi + GstRtspServer 1.0)."""
    return os.environ.get("VIDICON_GST_PYTHON", "/usr/bin/python3")


@functools.cache
def _unavailable_reason() -> str | None:
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH"
    py = system_python()
    if not Path(py).is_file():
        return f"{py} not found (set VIDICON_GST_PYTHON to a Python with gi)"
    try:
        proc = subprocess.run(
            [py, "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {py}: {exc}"
    if proc.returncode != 0 or "ok" not in proc.stdout:
        detail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return (
            f"{py} lacks GStreamer RTSP server bindings (python3-gi, "
            f"gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-*): {detail}"
        )
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Same option the server uses, so TIME_WAIT leftovers do not count as busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class RtspCamera:
    """A looping RTSP test camera serving ``/cam1`` .. ``/cam{mounts}``.

    ``port=None`` picks a free port once, at construction; it is kept across
    ``stop()``/``start()`` so a restarted camera reappears at the same URLs.
    """

    def __init__(
        self,
        clip: Path,
        mounts: int = 1,
        port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        auth: str = "basic",
    ) -> None:
        if (user is None) != (password is None):
            raise ValueError("user and password go together")
        if auth not in ("basic", "digest"):
            raise ValueError(f"auth must be 'basic' or 'digest', not {auth!r}")
        if mounts < 1:
            raise ValueError("mounts must be >= 1")
        self.clip = Path(clip)
        self.mounts = mounts
        self.port = port if port is not None else _free_port()
        self.user = user
        self.password = password
        self.auth = auth
        self.host = "127.0.0.1"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    # ------------------------------------------------------------------ availability

    @staticmethod
    def is_available() -> bool:
        """True if ffmpeg/ffprobe are on PATH and the system Python has GstRtspServer 1.0."""
        return _unavailable_reason() is None

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why the camera cannot run here (a skip message), or None if it can."""
        return _unavailable_reason()

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        cmd = [
            system_python(),
            str(CAMERA_SCRIPT),
            "--port",
            str(self.port),
            "--clip",
            str(self.clip),
            "--mounts",
            str(self.mounts),
            "--address",
            self.host,
        ]
        if self.user is not None and self.password is not None:
            cmd += ["--user", self.user, "--password", self.password, "--auth", self.auth]
        return cmd

    def start(self, timeout: float = READY_TIMEOUT_S) -> RtspCamera:
        """Spawn the camera and wait until it prints READY; raise RuntimeError on failure."""
        if self.running:
            return self
        self._cleanup()
        if not self.clip.is_file():
            raise FileNotFoundError(self.clip)
        deadline = time.monotonic() + timeout
        # After a stop() the previous server's socket may linger for a moment.
        while not _port_bindable(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self.port} is still in use")
            time.sleep(0.1)
        self._stderr = tempfile.TemporaryFile(prefix="rtsp_camera_")  # noqa: SIM115 (closed in stop)
        self._proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # keep terminal Ctrl-C from hitting it twice
        )
        try:
            self._wait_ready(deadline)
        except BaseException:
            self._terminate()
            raise
        return self

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        out = self._proc.stdout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(out, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(
                        f"RTSP camera not ready after timeout:\n{self._stderr_text()}"
                    )
                if sel.select(timeout=min(remaining, 0.5)):
                    chunk = os.read(out.fileno(), 4096)
                    if not chunk:  # EOF: process exited
                        self._proc.wait(timeout=5)
                        raise RuntimeError(
                            f"RTSP camera exited with {self._proc.returncode}:\n"
                            f"{self._stderr_text()}"
                        )
                    buf += chunk
                    for line in buf.splitlines():
                        if line.startswith(b"READY "):
                            return
                elif self._proc.poll() is not None:
                    raise RuntimeError(
                        f"RTSP camera exited with {self._proc.returncode}:\n{self._stderr_text()}"
                    )

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.flush()
            self._stderr.seek(0)
            return self._stderr.read().decode(errors="replace")[-4000:]
        except (OSError, ValueError):
            return ""

    def stderr_text(self) -> str:
        """The camera's stderr so far (last 4000 characters), for diagnostics."""
        return self._stderr_text()

    def _terminate(self, timeout: float = 5.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if proc.stdout is not None:
            proc.stdout.close()

    def _cleanup(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._proc = None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the camera, wait (then SIGKILL) and wait for its port to be free again."""
        self._terminate(timeout)
        self._cleanup()
        deadline = time.monotonic() + PORT_FREE_TIMEOUT_S
        while not _port_bindable(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> RtspCamera:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()

    # ------------------------------------------------------------------ URLs

    @property
    def base_url(self) -> str:
        return f"rtsp://{self.host}:{self.port}/"

    def url(self, i: int = 1, with_credentials: bool = True) -> str:
        """URL of mount ``/cam{i}`` (1-based), with ``user:password@`` if configured."""
        if not 1 <= i <= self.mounts:
            raise ValueError(f"mount {i} out of range 1..{self.mounts}")
        cred = ""
        if with_credentials and self.user is not None and self.password is not None:
            cred = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}@"
        return f"rtsp://{cred}{self.host}:{self.port}/cam{i}"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RtspCamera {self.base_url} mounts={self.mounts} {state}>"
