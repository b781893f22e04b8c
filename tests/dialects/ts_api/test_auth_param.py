"""``auth=`` as the TS-API guide's pages build it: ``btoa(user + ':' + password)``
put into the URL unencoded, so a ``+`` of the base64 arrives as a space."""

from __future__ import annotations

import base64

import httpx
import pytest

from vidicon.api.native.security import decode_user_password
from vidicon.app import Vidicon
from vidicon.base.errors import Unauthorized
from vidicon.core.rights import Right

USER, PASSWORD = "guard", "night-shift>1"
RAW = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()  # Z3VhcmQ6bmlnaHQtc2hpZnQ+MQ==


def test_a_space_is_the_plus_it_was() -> None:
    assert "+" in RAW
    assert decode_user_password(RAW.replace("+", " ")) == (USER, PASSWORD)
    assert decode_user_password(RAW) == (USER, PASSWORD)
    for bad in (
        "Z3VhcmQ6bmlnaHQtc2hpZnQ*MQ==",
        "not base64!",
        base64.b64encode(b"nocolon").decode(),
    ):
        with pytest.raises(Unauthorized):
            decode_user_password(bad)


async def test_unencoded_auth_signs_in(vidicon_app: Vidicon, client: httpx.AsyncClient) -> None:
    await vidicon_app.auth.create_user(
        USER, PASSWORD, is_admin=False, rights=frozenset({Right.REMOTE})
    )
    # Sent as the page sends it: '+' and '=' as they are (the server's query parser
    # turns the '+' into a space).
    answer = await client.get(f"/api/info?whoAmI&auth={RAW}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["whoAmI"]["uid"] == USER
    wrong = base64.b64encode(f"{USER}:night-shift>2".encode()).decode()
    assert "+" in wrong
    assert (await client.get(f"/api/info?whoAmI&auth={wrong}")).status_code == 401
