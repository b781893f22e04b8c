"""Shared fixtures: a started Vidicon on a temporary data directory and HTTP clients.

``vidicon_app`` runs the real composition root (SQLite in ``tmp_path``, the
administrator from ``VIDICON_ADMIN_*``); ``client`` talks to the native API
in-process through ``httpx.ASGITransport`` with no credentials, and
``admin_client`` does the same as the administrator (HTTP Basic).

Password hashing stays Argon2id but with the cheapest parameters
(``fast_password_hashing``): the production cost (~0.1 s per hash and per
Basic login) would otherwise dominate the run time of the API tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from vidicon.api.server import create_app
from vidicon.app import Vidicon
from vidicon.config import AuthConfig, Config, LiveConfig, SourcesConfig, StorageConfig
from vidicon.services import auth as auth_service

ADMIN_USER = "admin"
ADMIN_PASSWORD = "correct-horse-1"
BASE_URL = "http://test"


def make_config(data_dir: Path, **storage: Any) -> Config:
    """A configuration for tests: no free-space guard, quick reconnects, no
    RTSP restream (tests that need one pick a free port), failed sign-ins
    answered at once (the delay has its own tests)."""
    return Config(
        storage=StorageConfig(data_dir=data_dir, min_free_bytes=0, **storage),
        sources=SourcesConfig(retry_initial_s=0.2, retry_max_s=1.0, open_timeout_s=5.0),
        live=LiveConfig(rtsp_port=0),
        auth=AuthConfig(failure_delay_s=0.0),
    )


def make_client(vidicon: Vidicon, **kwargs: Any) -> httpx.AsyncClient:
    """An in-process client for ``vidicon``'s HTTP app (lifecycle left to the caller)."""
    transport = httpx.ASGITransport(app=create_app(vidicon, manage_lifecycle=False))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, **kwargs)


@pytest.fixture
def admin_auth() -> tuple[str, str]:
    return (ADMIN_USER, ADMIN_PASSWORD)


def _cheap_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with minimal cost for services built while the fixture is active."""
    monkeypatch.setattr(auth_service, "PasswordHasher", _cheap_hasher)


@pytest.fixture
async def vidicon_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_password_hashing: None
) -> AsyncIterator[Vidicon]:
    monkeypatch.setenv("VIDICON_ADMIN_USER", ADMIN_USER)
    monkeypatch.setenv("VIDICON_ADMIN_PASSWORD", ADMIN_PASSWORD)
    vidicon = Vidicon(make_config(tmp_path))
    await vidicon.start()
    try:
        yield vidicon
    finally:
        await vidicon.stop()


@pytest.fixture
async def client(vidicon_app: Vidicon) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(vidicon_app) as http:
        yield http


@pytest.fixture
async def admin_client(
    vidicon_app: Vidicon, admin_auth: tuple[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(vidicon_app, auth=admin_auth) as http:
        yield http
