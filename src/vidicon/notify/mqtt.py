"""MQTT: one message per event on ``<prefix>/<channel id | system>/<kind>``.

A connection is kept (aiomqtt, over paho-mqtt). On every connect the server
publishes a retained ``online`` on ``<prefix>/status``; the broker publishes
the retained ``offline`` last will if the server disappears, and the server
publishes it itself on a clean stop, so a subscriber (Home Assistant, Node-RED)
always knows whether events can come. Event messages are not retained: an
event is news, not state. A failed publish drops the connection; the next try
reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

import aiomqtt

from vidicon.config import MqttConfig
from vidicon.notify.message import Notice

log = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"


class MqttSender:
    def __init__(self, config: MqttConfig) -> None:
        self.config = config
        self.name = f"mqtt {config.host}:{config.port}"
        self.secrets = (config.password or "",)
        self.timeout_s = config.timeout_s
        self.status_topic = f"{config.topic_prefix}/status"
        self.client_id = f"vidicon-{socket.gethostname()}-{os.getpid()}"[:64]
        self._client: aiomqtt.Client | None = None

    def topic(self, notice: Notice) -> str:
        channel = notice.event.channel_id
        where = "system" if channel is None else str(channel)
        return f"{self.config.topic_prefix}/{where}/{notice.event.kind.value}"

    async def open(self) -> None:
        if self._client is not None:
            return
        config = self.config
        client = aiomqtt.Client(
            config.host,
            config.port,
            username=config.username,
            password=config.password,
            identifier=self.client_id,
            will=aiomqtt.Will(self.status_topic, OFFLINE, qos=1, retain=True),
            tls_params=(
                aiomqtt.TLSParameters(ca_certs=str(config.ca_file) if config.ca_file else None)
                if config.tls
                else None
            ),
            timeout=config.timeout_s,
            keepalive=30,
            logger=log,
        )
        await client.__aenter__()
        try:
            await client.publish(self.status_topic, ONLINE, qos=1, retain=True)
        except BaseException:
            await _disconnect(client)
            raise
        self._client = client
        log.info("%s: connected", self.name)

    async def send(self, notice: Notice) -> None:
        await self.open()
        client = self._client
        assert client is not None
        try:
            await client.publish(self.topic(notice), notice.body, qos=self.config.qos)
        except BaseException:
            self._client = None  # reconnect on the next try
            await _disconnect(client)
            raise

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await client.publish(self.status_topic, OFFLINE, qos=1, retain=True)
        finally:
            await _disconnect(client)


async def _disconnect(client: aiomqtt.Client, timeout_s: float = 2.0) -> None:
    """Disconnect without waiting long for a broker that no longer answers."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout_s):
            await client.__aexit__(None, None, None)
