"""Rights on the one user model (vidicon.core.rights, services.auth)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import make_client
from vidicon.app import Vidicon
from vidicon.base.errors import Forbidden, Unauthorized
from vidicon.core.rights import ALL_RIGHTS, Right, parse_rights
from vidicon.services.auth import User


def test_parse_rights_takes_lists_and_comma_strings_case_insensitively() -> None:
    assert parse_rights(["DataExport", "control"]) == {Right.DATA_EXPORT, Right.CONTROL}
    assert parse_rights("Playback, LPR") == {Right.PLAYBACK, Right.LPR}
    assert parse_rights([]) == frozenset()
    with pytest.raises(ValueError, match="SearchEdit"):
        parse_rights(["Playback", "SearchEdit"])
    with pytest.raises(ValueError):
        parse_rights(3)


def test_admins_hold_every_right_and_others_only_theirs() -> None:
    admin = User(1, "admin", True)
    guard = User(2, "guard", False, rights=frozenset({Right.PLAYBACK}))
    assert all(admin.has(r) for r in Right)
    assert guard.has(Right.PLAYBACK) and not guard.has(Right.CONTROL)
    guard.require(Right.PLAYBACK)
    with pytest.raises(Forbidden, match="Control"):
        guard.require(Right.CONTROL)
    with pytest.raises(Forbidden):
        guard.require_admin()


async def test_rights_are_stored_and_come_back_with_every_credential(
    vidicon_app: Vidicon,
) -> None:
    auth = vidicon_app.auth
    created = await auth.create_user(
        "guard", "guard-password", is_admin=False, rights=frozenset({Right.PLAYBACK, Right.LPR})
    )
    assert created.rights == {Right.PLAYBACK, Right.LPR}
    by_password = await auth.verify_password("guard", "guard-password")
    by_token = await auth.verify_token(await auth.create_token(by_password, "t"))
    by_session = await auth.verify_session(await auth.create_session(by_password))
    for user in (by_password, by_token, by_session):
        assert user.rights == {Right.PLAYBACK, Right.LPR}
        assert not user.has(Right.DATA_EXPORT)
    default = await auth.create_user("old-style", "old-password", is_admin=False)
    assert default.rights == ALL_RIGHTS


async def test_a_remembered_session_follows_logout_and_access_changes_at_once(
    vidicon_app: Vidicon,
) -> None:
    auth = vidicon_app.auth
    user = await auth.create_user("guard", "guard-password", is_admin=False)
    session = await auth.create_session(user)
    assert (await auth.verify_session(session)).channels is None
    await auth.set_channel_access(user.id, [2])
    assert (await auth.verify_session(session)).channels == {2}
    await auth.revoke_session(session)
    with pytest.raises(Unauthorized):
        await auth.verify_session(session)


async def test_me_tells_the_rights_held(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    await vidicon_app.auth.create_user(
        "clerk", "clerk-password", is_admin=False, rights=frozenset({Right.LPR})
    )
    async with make_client(vidicon_app, auth=("clerk", "clerk-password")) as clerk:
        me = (await clerk.get("/v1/auth/me")).json()
    assert me["rights"] == ["LPR"] and me["is_admin"] is False
    assert (await admin_client.get("/v1/auth/me")).json()["rights"] == sorted(
        r.value for r in Right
    )
