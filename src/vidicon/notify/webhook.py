"""Webhooks: an HTTP POST of the JSON message, signed with HMAC-SHA256.

With a secret, every request carries ``X-Vidicon-Signature: t=<unix seconds>,
v1=<hex>``, where ``<hex>`` is HMAC-SHA256(secret, ``"<t>." + body``). A
receiver recomputes it over the raw body, compares in constant time and
rejects old timestamps (say, over five minutes) so a captured request cannot
be replayed later. A 2xx answer is success; 408, 429 and 5xx are retried;
any other answer is final (the receiver rejected the message).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlsplit

import httpx

from vidicon.config import WebhookConfig
from vidicon.notify.delivery import PermanentError
from vidicon.notify.message import Notice

SIGNATURE_HEADER = "X-Vidicon-Signature"
RETRYABLE = {408, 425, 429}


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The value of the signature header for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookSender:
    def __init__(self, config: WebhookConfig, number: int) -> None:
        self.config = config
        parts = urlsplit(config.url)
        port = f":{parts.port}" if parts.port else ""
        self.name = f"webhook {number} {parts.scheme}://{parts.hostname}{port}"
        self.secrets = (config.secret or "", parts.password or "", config.url)
        self.timeout_s = config.timeout_s
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout_s, follow_redirects=False)

    async def send(self, notice: Notice) -> None:
        await self.open()
        assert self._client is not None
        body = notice.body
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Vidicon",
            "X-Vidicon-Event": notice.event.kind.value,
        }
        if self.config.secret:
            headers[SIGNATURE_HEADER] = signature(self.config.secret, int(time.time()), body)
        response = await self._client.post(self.config.url, content=body, headers=headers)
        status = response.status_code
        if 200 <= status < 300:
            return
        if status >= 500 or status in RETRYABLE:
            raise ConnectionError(f"HTTP {status}")
        raise PermanentError(f"HTTP {status}")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
