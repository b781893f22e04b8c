"""Users, passwords, API keys, sign-in throttling, the audit trail and TS-API /api/auth."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from vidicon.app import Vidicon
from vidicon.base.errors import TooManyRequests
from vidicon.config import AuthConfig
from vidicon.core.rights import Right
from vidicon.db import schema
from vidicon.services.login_throttle import LoginThrottle

PASSWORD = "user-password-1"
COOKIE = "vidicon_session"


def b64(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def basic(user: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": f"Basic {b64(user, password)}"}


async def new_user(admin: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    response = await admin.post(
        "/v1/users", json={"username": name, "password": PASSWORD, **fields}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def audit(admin: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await admin.get("/v1/audit", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


# --- users -----------------------------------------------------------------------------


async def test_user_crud_and_rights(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    made = await new_user(admin_client, "guard", rights=["playback", "LPR"], channels=[2, 1])
    assert made["rights"] == ["LPR", "Playback"] and made["channels"] == [1, 2]
    assert made["is_admin"] is False and "password" not in made
    listed = (await admin_client.get("/v1/users")).json()
    assert [u["username"] for u in listed] == [ADMIN_USER, "guard"]
    assert listed[0]["rights"] == sorted(r.value for r in Right)

    uid = made["id"]
    patched = await admin_client.patch(f"/v1/users/{uid}", json={"channels": None})
    assert patched.json()["channels"] is None and patched.json()["rights"] == ["LPR", "Playback"]
    patched = await admin_client.patch(f"/v1/users/{uid}", json={"rights": ["Control"]})
    assert patched.json()["rights"] == ["Control"]
    me = await client.get(f"/v1/users/{uid}", headers=basic("guard"))
    assert me.status_code == 200  # one's own record
    for bad in ({"rights": ["SearchEdit"]}, {"channels": []}, {"channels": [0]}):
        assert (await admin_client.patch(f"/v1/users/{uid}", json=bad)).status_code == 422, bad
    duplicate = await admin_client.post(
        "/v1/users", json={"username": "guard", "password": PASSWORD}
    )
    assert duplicate.status_code == 409
    short = await admin_client.post("/v1/users", json={"username": "x", "password": "short"})
    assert short.status_code == 422

    assert (await admin_client.delete(f"/v1/users/{uid}")).status_code == 204
    assert (await admin_client.get(f"/v1/users/{uid}")).status_code == 404
    assert (await client.get("/v1/channels", headers=basic("guard"))).status_code == 401


async def test_nobody_grants_more_than_they_hold(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await new_user(admin_client, "manager", rights=["Settings", "Playback"], channels=[1, 2])
    victim = await new_user(admin_client, "operator", rights=["Control"])
    own = await new_user(admin_client, "viewer", rights=["Playback"], channels=[1])
    manager = basic("manager")
    refusals = [
        {"username": "a1", "password": PASSWORD, "is_admin": True},
        {"username": "a2", "password": PASSWORD, "rights": ["Control"]},
        {"username": "a3", "password": PASSWORD, "channels": [3]},
        {"username": "a4", "password": PASSWORD},  # every channel
    ]
    for body in refusals:
        response = await client.post("/v1/users", json=body, headers=manager)
        assert response.status_code == 403, body
    ok = await client.post(
        "/v1/users",
        json={"username": "a5", "password": PASSWORD, "rights": ["Playback"], "channels": [2]},
        headers=manager,
    )
    assert ok.status_code == 201, ok.text
    # Accounts holding more than the manager are out of reach, the administrator too.
    for path, body in [
        (f"/v1/users/{victim['id']}/password", {"password": "taken-over-1"}),
        ("/v1/users/1/password", {"password": "taken-over-1"}),
    ]:
        assert (await client.put(path, json=body, headers=manager)).status_code == 403
    assert (await client.delete(f"/v1/users/{victim['id']}", headers=manager)).status_code == 403
    assert (
        await client.patch("/v1/users/1", json={"rights": []}, headers=manager)
    ).status_code == 403
    grant = await client.patch(
        f"/v1/users/{own['id']}", json={"rights": ["Playback", "DataExport"]}, headers=manager
    )
    assert grant.status_code == 403
    assert (await client.get("/v1/channels", headers=basic("operator"))).status_code == 200
    reset = await client.put(
        f"/v1/users/{own['id']}/password", json={"password": "reset-password-1"}, headers=manager
    )
    assert reset.status_code == 204
    assert (
        await client.get("/v1/channels", headers=basic("viewer", "reset-password-1"))
    ).is_success


async def test_the_last_administrator_stays(admin_client: httpx.AsyncClient) -> None:
    assert (await admin_client.delete("/v1/users/1")).status_code == 409
    assert (await admin_client.patch("/v1/users/1", json={"is_admin": False})).status_code == 409
    second = await new_user(admin_client, "second", is_admin=True)
    assert (
        await admin_client.patch(f"/v1/users/{second['id']}", json={"is_admin": False})
    ).is_success


async def test_password_change_revokes_sessions_and_keys(
    admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await new_user(admin_client, "guard", rights=["Playback"])
    login = await client.post("/v1/auth/login", json={"username": "guard", "password": PASSWORD})
    old_cookie = login.cookies[COOKIE]
    client.cookies.clear()
    token = (
        await client.post("/v1/auth/tokens", json={"name": "k"}, headers=basic("guard"))
    ).json()["token"]
    other_session = {"Cookie": f"{COOKIE}={old_cookie}"}
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/v1/auth/me", headers=other_session)).status_code == 200

    wrong = await client.post(
        "/v1/auth/password",
        json={"old_password": "not-it-at-all", "new_password": "new-password-1"},
        headers=bearer,
    )
    assert wrong.status_code == 403
    assert (await client.get("/v1/auth/me", headers=bearer)).status_code == 200
    changed = await client.post(
        "/v1/auth/password",
        json={"old_password": PASSWORD, "new_password": "new-password-1"},
        headers=other_session,
    )
    assert changed.status_code == 204
    fresh_cookie = changed.cookies[COOKIE]
    assert fresh_cookie != old_cookie
    client.cookies.clear()
    for gone in (other_session, bearer, basic("guard")):
        assert (await client.get("/v1/auth/me", headers=gone)).status_code == 401, gone
    assert (
        await client.get("/v1/auth/me", headers={"Cookie": f"{COOKIE}={fresh_cookie}"})
    ).is_success
    assert (await client.get("/v1/auth/me", headers=basic("guard", "new-password-1"))).is_success


async def test_rights_change_and_reset_revoke_credentials(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    guard = await new_user(admin_client, "guard", rights=["Playback"])
    # A remembered password check must not outlive the change either.
    assert (await client.get("/v1/auth/me", headers=basic("guard"))).is_success
    token = (await client.post("/v1/auth/tokens", json={}, headers=basic("guard"))).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    await admin_client.patch(f"/v1/users/{guard['id']}", json={"rights": []})
    assert (await client.get("/v1/auth/me", headers=bearer)).status_code == 401
    refused = await client.get("/v1/channels/1/days", headers=basic("guard"))
    assert refused.status_code == 403
    session = await vidicon_app.auth.create_session(
        await vidicon_app.auth.verify_password("guard", PASSWORD)
    )
    await admin_client.put(
        f"/v1/users/{guard['id']}/password", json={"password": "reset-password-1"}
    )
    assert (
        await client.get("/v1/auth/me", headers={"Cookie": f"{COOKIE}={session}"})
    ).status_code == 401
    assert (await client.get("/v1/auth/me", headers=basic("guard"))).status_code == 401
    async with vidicon_app.db.read() as conn:
        left = (await conn.execute(sa.select(schema.sessions))).all()
        users = (await conn.execute(sa.select(schema.users.c.password_hash))).scalars().all()
    assert all(str(row.user_id) != str(guard["id"]) for row in left)
    assert all(h.startswith("$argon2") and "reset-password-1" not in h for h in users)


# --- API keys --------------------------------------------------------------------------


async def test_api_keys_list_and_revoke(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    guard = await new_user(admin_client, "guard")
    made = await client.post(
        "/v1/auth/tokens", json={"name": "nvr", "ttl_seconds": 3600}, headers=basic("guard")
    )
    secret = made.json()["token"]
    other = (
        await client.post("/v1/auth/tokens", json={"name": "two"}, headers=basic("guard"))
    ).json()
    listed = (await client.get("/v1/auth/tokens", headers=basic("guard"))).json()
    assert [k["name"] for k in listed] == ["nvr", "two"]
    assert listed[0]["expires"] is not None and listed[1]["expires"] is None
    assert secret not in str(listed) and other["token"] not in str(listed)
    assert (await admin_client.get("/v1/auth/tokens")).json() == []
    assert [
        k["name"] for k in (await admin_client.get(f"/v1/users/{guard['id']}/tokens")).json()
    ] == ["nvr", "two"]
    assert (await client.get("/v1/users/1/tokens", headers=basic("guard"))).status_code == 403

    # Another user's key is not there for a non-administrator.
    await new_user(admin_client, "eve")
    assert (
        await client.delete(f"/v1/auth/tokens/{listed[0]['id']}", headers=basic("eve"))
    ).status_code == 404
    bearer = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/v1/auth/me", headers=bearer)).status_code == 200
    assert (
        await client.delete(f"/v1/auth/tokens/{listed[0]['id']}", headers=basic("guard"))
    ).status_code == 204
    assert (await client.get("/v1/auth/me", headers=bearer)).status_code == 401
    assert (await admin_client.delete(f"/v1/auth/tokens/{listed[1]['id']}")).status_code == 204
    assert (await client.get("/v1/auth/tokens", headers=basic("guard"))).json() == []
    async with vidicon_app.db.read() as conn:
        hashes = (await conn.execute(sa.select(schema.api_tokens.c.token_hash))).scalars().all()
    assert secret not in hashes


# --- throttling ------------------------------------------------------------------------


def test_throttle_delays_grow_then_lock_out_per_user_and_per_address() -> None:
    now = [100.0]
    config = AuthConfig(
        failure_delay_s=0.5,
        max_failure_delay_s=2.0,
        user_failures=3,
        address_failures=5,
        lockout_s=60,
    )
    throttle = LoginThrottle(config, lambda: now[0])
    assert [throttle.failed("alice", "10.0.0.1") for _ in range(3)] == [0.5, 1.0, 2.0]
    with pytest.raises(TooManyRequests, match="too many") as locked:
        throttle.check("alice", "10.0.0.2")
    assert locked.value.retry_after_s == 60
    throttle.check("bob", "10.0.0.2")  # another name from another address is fine
    # Many names from one address: the address locks out, for every name.
    for name in ("n1", "n2"):
        throttle.failed(name, "10.0.0.1")
    with pytest.raises(TooManyRequests, match="too many"):
        throttle.check("somebody-new", "10.0.0.1")
    now[0] += 61
    throttle.check("alice", "10.0.0.1")
    throttle.succeeded("alice")
    assert throttle.failed("alice", "10.0.0.3") == 0.5  # counted afresh


async def test_a_locked_name_looks_the_same_whether_it_exists_or_not(
    client: httpx.AsyncClient,
) -> None:
    answers = {}
    for name in (ADMIN_USER, "no-such-user"):
        codes = [
            (await client.get("/v1/channels", headers=basic(name, "wrong-password"))).status_code
            for _ in range(AuthConfig().user_failures + 1)
        ]
        answers[name] = codes
    assert (
        answers[ADMIN_USER] == answers["no-such-user"] == [401] * AuthConfig().user_failures + [429]
    )


async def test_explicit_login_is_throttled_with_429(client: httpx.AsyncClient) -> None:
    body = {"username": ADMIN_USER, "password": "wrong-password"}
    codes = [(await client.post("/v1/auth/login", json=body)).status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    locked = await client.post(
        "/v1/auth/login", json={"username": ADMIN_USER, "password": ADMIN_PASSWORD}
    )
    assert locked.status_code == 429 and COOKIE not in locked.cookies
    assert locked.json()["error"]["code"] == "too_many_requests"


# --- TS-API /api/auth and session fixation ---------------------------------------------


async def test_ts_api_login_auth_and_logout(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/auth")).status_code == 401
    login = await client.get(
        "/api/auth", params={"login": b64(ADMIN_USER, ADMIN_PASSWORD), "indent": 2}
    )
    assert login.status_code == 200, login.text
    assert login.json() == {"uid": ADMIN_USER, "name": ADMIN_USER}
    assert "\n  " in login.text
    cookie = login.cookies[COOKIE]
    header = login.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header
    # The session works everywhere, until logout revokes it on the server.
    stolen = {"Cookie": f"{COOKIE}={cookie}"}
    assert (await client.get("/api/auth")).status_code == 200
    assert (await client.get("/v1/channels")).status_code == 200
    out = await client.get("/api/auth?logout")
    assert out.status_code == 200
    client.cookies.clear()
    assert (await client.get("/v1/channels", headers=stolen)).status_code == 401
    assert (await client.get("/api/auth", headers=stolen)).status_code == 401
    # auth= signs in the same way; wrong or malformed credentials are 401.
    again = await client.get("/api/auth", params={"auth": b64(ADMIN_USER, ADMIN_PASSWORD)})
    assert again.status_code == 200 and again.cookies[COOKIE] != cookie
    for bad in (b64(ADMIN_USER, "wrong-password"), "!!!", b64("nobody", "x")):
        client.cookies.clear()
        response = await client.get("/api/auth", params={"login": bad})
        assert response.status_code == 401 and COOKIE not in response.cookies


@pytest.mark.parametrize("how", ["native", "ts-api"])
async def test_a_session_id_set_before_login_is_not_kept(
    vidicon_app: Vidicon, client: httpx.AsyncClient, how: str
) -> None:
    async def sign_in(planted: str) -> httpx.Response:
        headers = {"Cookie": f"{COOKIE}={planted}"}
        if how == "native":
            body = {"username": ADMIN_USER, "password": ADMIN_PASSWORD}
            return await client.post("/v1/auth/login", json=body, headers=headers)
        params = {"login": b64(ADMIN_USER, ADMIN_PASSWORD)}
        return await client.get("/api/auth", params=params, headers=headers)

    # An id the attacker made up, and a real one the attacker got (their own session).
    made_up = "attacker-chosen-session-id-0123456789"
    real = await vidicon_app.auth.create_session(
        await vidicon_app.auth.verify_password(ADMIN_USER, ADMIN_PASSWORD)
    )
    for planted in (made_up, real):
        response = await sign_in(planted)
        assert response.status_code == 200, response.text
        issued = response.cookies[COOKIE]
        assert issued != planted
        client.cookies.clear()
        assert (
            await client.get("/v1/auth/me", headers={"Cookie": f"{COOKIE}={planted}"})
        ).status_code == 401
        assert (
            await client.get("/v1/auth/me", headers={"Cookie": f"{COOKIE}={issued}"})
        ).status_code == 200


# --- audit trail -----------------------------------------------------------------------


async def test_audit_trail_records_who_did_what_without_secrets(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await client.post("/v1/auth/login", json={"username": ADMIN_USER, "password": "wrong-password"})
    await client.post("/v1/auth/login", json={"username": ADMIN_USER, "password": ADMIN_PASSWORD})
    await client.post("/v1/auth/logout")
    client.cookies.clear()
    await client.get("/api/auth", params={"login": b64(ADMIN_USER, ADMIN_PASSWORD)})
    await client.get("/api/auth?logout")
    guard = await new_user(admin_client, "guard", rights=["Playback"])
    await admin_client.patch(f"/v1/users/{guard['id']}", json={"rights": ["Playback", "LPR"]})
    await admin_client.put(f"/v1/users/{guard['id']}/password", json={"password": "another-pass-1"})
    key = (await admin_client.post("/v1/auth/tokens", json={"name": "ci"})).json()
    key_id = (await admin_client.get("/v1/auth/tokens")).json()[0]["id"]
    await admin_client.delete(f"/v1/auth/tokens/{key_id}")
    body = {"name": "Cam", "main": {"url": "rtsp://u:s3cret-cam@127.0.0.1:1/x"}, "enabled": False}
    channel = (await admin_client.post("/v1/channels", json=body)).json()
    await admin_client.put(f"/v1/channels/{channel['id']}", json={**body, "name": "Cam 2"})
    await admin_client.delete(f"/v1/channels/{channel['id']}")
    await admin_client.delete(f"/v1/users/{guard['id']}")

    entries = list(reversed(await audit(admin_client)))
    codes = [e["code"] for e in entries]
    assert codes == [
        "signInFailed", "signIn", "signOut", "signIn", "signOut",
        "userCreated", "userUpdated", "passwordChanged", "apiKeyCreated", "apiKeyRevoked",
        "settingsChanged", "settingsChanged", "settingsChanged", "userDeleted",
    ]  # fmt: skip
    assert all(e["attributes"]["client"] == "127.0.0.1" for e in entries)
    assert entries[0]["attributes"]["user"] == ADMIN_USER and "uid" not in entries[0]["attributes"]
    assert entries[1]["attributes"]["uid"] == ADMIN_USER  # TS-API's uid: the sign-in name
    assert entries[1]["attributes"]["userId"] == 1
    assert entries[6]["attributes"]["changed"] == {"rights": ["LPR", "Playback"]}
    assert [e["attributes"]["action"] for e in entries[10:13]] == [
        "channelCreated", "channelUpdated", "channelDeleted",
    ]  # fmt: skip
    assert entries[10]["channel"] == channel["id"]
    text = str(entries)
    for secret in (
        ADMIN_PASSWORD,
        "another-pass-1",
        PASSWORD,
        "s3cret-cam",
        key["token"],
        "wrong-password",
    ):
        assert secret not in text
    # Every request with a password is not a sign-in.
    assert (await admin_client.get("/v1/channels")).is_success
    assert len(await audit(admin_client, code="signIn")) == 2
    page = (await admin_client.get("/v1/audit", params={"limit": 2, "offset": 1})).json()
    assert page["total"] == len(entries) and len(page["entries"]) == 2
    # Only administrators read it.
    await new_user(admin_client, "settings", rights=[r.value for r in Right])
    for path in ("/v1/audit", "/v1/exports/audit"):
        assert (await client.get(path, headers=basic("settings"))).status_code == 403
    assert (await admin_client.get("/v1/exports/audit")).json() == []
    # The entries are events of kind audit on the bus: the event log's privacy entries.
    stored = await vidicon_app.events.get(entries[0]["id"])
    assert stored is not None and stored.kind.value == "audit"
