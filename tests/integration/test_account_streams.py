"""The account page's streams, the player's end beacon and the password change, through Flask.

Uses the web app of ``test_web_auth_flows`` (the AWS emulator's Cognito and
DynamoDB); streams are opened with the store itself, as a grant would.
"""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.integration.test_web_auth_flows import (
    PASSWORD,
    Stack,
    csrf_from,
    make_user,
    post_form,
    sign_in,
    stack,
    unique,
)

__all__ = ["stack"]  # the module-scoped web app fixture, shared


def _open(stack: Stack, username: str, video_id: str = "v1") -> str:
    streams = stack.services.streams
    user_id = stack.services.users.find(username).user_id
    opened = streams.open(
        streams.get(user_id),
        video_id=video_id,
        title=f"Video {video_id}",
        device="Chrome on Linux",
        plan="free",
        duration=60.0,
    )
    return opened.session_id


def _signed_in(stack: Stack) -> tuple[str, FlaskClient]:
    username = unique("sam")
    make_user(stack, username, record=True)
    client = stack.app.test_client()
    sign_in(client, username)
    return username, client


def test_the_account_page_lists_a_stream_and_ends_it(stack: Stack) -> None:
    username, client = _signed_in(stack)
    assert 'id="no-streams"' in client.get("/account").text
    session_id = _open(stack, username)
    page = client.get("/account").text
    assert f'data-session-id="{session_id}"' in page and "Chrome on Linux" in page

    ended = post_form(client, "/account", f"/account/streams/{session_id}/end", {})
    assert ended.status_code == 302
    page = client.get("/account").text
    assert "was ended" in page and 'id="no-streams"' in page
    again = post_form(client, "/account", f"/account/streams/{session_id}/end", {})
    assert "had already ended" in client.get(again.headers["Location"]).text


def test_the_end_beacon_ends_the_stream_and_keeps_the_position_for_resume(stack: Stack) -> None:
    username, client = _signed_in(stack)
    session_id = _open(stack, username)
    token = csrf_from(client.get("/account").text)
    answer = client.post(
        "/watch/v1/end",
        data={"csrf_token": token, "session_id": session_id, "position": "12.5"},
    )
    assert answer.status_code == 204
    user_id = stack.services.users.find(username).user_id
    assert stack.services.streams.active(user_id) == ()
    entry = stack.services.streams.get(user_id, history=True).position_of("v1")
    assert entry is not None and entry.position == 12.5
    assert "Video v1" in client.get("/account").text  # recent history
    # A beacon without its CSRF token is refused and ends nothing.
    other = _open(stack, username)
    refused = client.post("/watch/v1/end", data={"session_id": other, "position": "1"})
    assert refused.status_code == 403
    assert len(stack.services.streams.active(user_id)) == 1


def test_a_password_change_explains_a_wrong_current_password_and_a_weak_new_one(
    stack: Stack,
) -> None:
    username, client = _signed_in(stack)
    new_password = PASSWORD + "x2!"

    def change(current: str, new: str, confirm: str | None = None) -> str:
        answer = post_form(
            client,
            "/account",
            "/account/password",
            {
                "current_password": current,
                "new_password": new,
                "confirm_password": new if confirm is None else confirm,
            },
        )
        if answer.status_code == 302:
            return client.get(answer.headers["Location"]).text
        assert answer.status_code == 400
        found = re.search(r'id="password-error">([^<]+)<', answer.text)
        assert found is not None
        return found.group(1)

    assert "current password is not right" in change("wrong-" + PASSWORD, new_password)
    assert "too weak" in change(PASSWORD, "short")
    assert "differ" in change(PASSWORD, new_password, confirm=new_password + "?")
    assert "Your password is changed" in change(PASSWORD, new_password)
    fresh = stack.app.test_client()
    assert sign_in(fresh, username, new_password).status_code == 302
    assert f"Account ({username})" in fresh.get("/account").text
