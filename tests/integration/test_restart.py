"""TS-API ``/api/system?restart`` on the real server process: it stops
gracefully, re-executes itself (same process id, a new start) and answers again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import VidiconServer


def process(server: VidiconServer) -> dict[str, Any] | None:
    try:
        response = server.client.get("/api/system?health=process", timeout=2)
    except httpx.TransportError:
        return None  # stopping or not listening yet
    return dict(response.json()["process"]) if response.status_code == 200 else None


def test_restart_starts_the_server_afresh(tmp_path: Path) -> None:
    with VidiconServer(tmp_path / "data") as server:
        assert server.proc is not None
        before = process(server)
        assert before is not None and before["pid"] == server.proc.pid
        answer = server.client.get("/api/system?restart")
        assert answer.status_code == 200
        assert answer.json() == {"code": 0, "message": "The server restarts in a few seconds."}
        deadline = time.monotonic() + 30
        after = process(server)
        while after is None or after["startTime"] == before["startTime"]:
            assert time.monotonic() < deadline, server.log_text()[-3000:]
            time.sleep(0.2)
            after = process(server)
        # The same process (a supervisor sees no exit), started again.
        assert after["pid"] == before["pid"] == server.proc.pid
        assert server.proc.poll() is None
        assert after["uptimeSeconds"] < before["uptimeSeconds"] + 30
        assert server.log_text().count("data in") == 2
