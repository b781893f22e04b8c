"""WebRTC answers carry loopback host candidates, so same-machine viewers connect
even where loopback is the only interface."""

from __future__ import annotations

import aioice

from vidicon.media.outputs.webrtc import include_loopback_candidates


async def test_loopback_is_offered_as_a_host_candidate() -> None:
    include_loopback_candidates()
    include_loopback_candidates()  # idempotent
    connection = aioice.Connection(ice_controlling=True, use_ipv6=False)
    try:
        await connection.gather_candidates()
        hosts = [c.host for c in connection.local_candidates if c.type == "host"]
    finally:
        await connection.close()
    assert hosts.count("127.0.0.1") == 1
