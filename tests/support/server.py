"""Runs the real Vidicon server as a separate process, as a user would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ADMIN = ("admin", "integration-pass-1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VidiconServer:
    def __init__(
        self,
        data_dir: Path,
        config: dict[str, dict[str, Any]] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        # The RTSP restream stays off unless a test asks for a port: the
        # default 8554 would collide between servers and with the machine.
        config = {**(config or {})}
        config["live"] = {"rtsp_port": 0, **config.get("live", {})}
        self.config = config
        self.port = free_port()
        self.config_path = data_dir.parent / f"{data_dir.name}.toml"
        lines: list[str] = []
        for section, values in config.items():
            lines.append(f"[{section}]")
            for key, value in values.items():
                lines.append(
                    f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"'
                )
        self.config_path.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = (log_dir or data_dir.parent) / f"{data_dir.name}.log"
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", auth=ADMIN, timeout=30)

    def start(self, timeout: float = 30) -> VidiconServer:
        env = {**os.environ, "VIDICON_ADMIN_USER": ADMIN[0], "VIDICON_ADMIN_PASSWORD": ADMIN[1]}
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vidicon",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--http-port",
                str(self.port),
                "--config",
                str(self.config_path),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if self.client.get("/v1/status").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not start in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- API helpers ---------------------------------------------------------

    def add_channel(self, name: str, url: str, **extra: Any) -> dict[str, Any]:
        response = self.client.post(
            "/v1/channels", json={"name": name, "main": {"url": url}, **extra}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def status(self, channel: int) -> dict[str, Any]:
        response = self.client.get(f"/v1/channels/{channel}/status")
        response.raise_for_status()
        return dict(response.json())

    def wait_status(self, channel: int, codes: set[int], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status = self.status(channel)
        while status["code"] not in codes:
            if time.monotonic() > deadline:
                raise AssertionError(f"channel {channel} status {status}, wanted {codes}")
            time.sleep(0.1)
            status = self.status(channel)
        return status

    def recordings(
        self, channel: int, start_us: int = 0, end_us: int | None = None
    ) -> dict[str, Any]:
        end_us = end_us or time.time_ns() // 1000 + 60_000_000
        start_us = start_us or end_us - 86_400_000_000
        response = self.client.get(
            "/v1/recordings", params={"channel": channel, "start": start_us, "end": end_us}
        )
        response.raise_for_status()
        return dict(response.json())

    def __enter__(self) -> VidiconServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
        self.client.close()
