"""The local stack's own hardening: private state files, the edge's security headers,
the dev log's audit lines and a signal handler that only records the signal."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.local import stack
from app.local.edge import SECURITY_HEADERS, with_security_headers
from app.local.stack import SignalFlag, write_private
from app.local.webserver import show_app_logs


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Umask 000: any file not created 0600 on purpose would come out world-readable."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# --------------------------------------------------------------------------- state files


def test_private_files_are_0600_even_under_an_open_umask(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "dev.env"
    write_private(target, "VIDGATE_SECRET_KEY=s3cret\n")
    assert _mode(target) == 0o600
    assert target.read_text() == "VIDGATE_SECRET_KEY=s3cret\n"
    assert [p.name for p in tmp_path.iterdir()] == ["dev.env"], "no temporary file left behind"


def test_an_older_world_readable_file_is_replaced_never_rewritten_in_place(
    tmp_path: Path, open_umask: None
) -> None:
    target = tmp_path / "dev-stack.json"
    target.write_text("{}")
    target.chmod(0o644)
    old_inode = target.stat().st_ino
    write_private(target, json.dumps({"users": [{"password": "x"}]}))
    assert _mode(target) == 0o600
    # A new file took its place: the secret was never written into the 0644 one.
    assert target.stat().st_ino != old_inode


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "dev.env"
    write_private(target, "A=1\n")

    with pytest.raises(TypeError):
        write_private(target, 42)  # type: ignore[arg-type]  # not text: nothing replaces it
    assert target.read_text() == "A=1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.env"]


def test_the_web_secret_key_is_made_once_and_private(tmp_path: Path, open_umask: None) -> None:
    key = stack._secret_key(tmp_path)
    assert len(key) >= 32
    assert _mode(tmp_path / "web-secret-key") == 0o600
    assert stack._secret_key(tmp_path) == key


# --------------------------------------------------------------------------- security headers


def _names(headers: list[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


def test_the_edge_adds_the_managed_policys_headers_a_response_lacks() -> None:
    got = _names(with_security_headers([("Content-Type", "image/jpeg")], https=False))
    assert got["x-content-type-options"] == "nosniff"
    assert got["x-frame-options"] == "SAMEORIGIN"
    assert got["referrer-policy"] == "strict-origin-when-cross-origin"
    assert got["x-xss-protection"] == "1; mode=block"
    assert "strict-transport-security" not in got, "HSTS is never sent over plain HTTP"


def test_hsts_goes_out_over_https_only() -> None:
    got = _names(with_security_headers([], https=True))
    assert got["strict-transport-security"] == "max-age=31536000"


def test_the_web_apps_own_values_win_except_nosniff() -> None:
    own = [
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("X-Content-Type-Options", "sniff-please"),
        ("Strict-Transport-Security", "max-age=600"),
    ]
    got = with_security_headers(own, https=True)
    names = [name.lower() for name, _ in got]
    assert len(names) == len(set(names)), "no header twice"
    values = _names(got)
    assert values["x-frame-options"] == "DENY"
    assert values["referrer-policy"] == "same-origin"
    assert values["strict-transport-security"] == "max-age=600"
    assert values["x-content-type-options"] == "nosniff"  # the policy overrides the origin here


def test_only_nosniff_overrides_the_origin() -> None:
    assert [name for name, _, override in SECURITY_HEADERS if override] == [
        "X-Content-Type-Options"
    ]


# --------------------------------------------------------------------------- the dev log


def test_the_playback_audit_line_reaches_the_dev_log() -> None:
    stream = io.StringIO()
    handler = show_app_logs(stream)
    try:
        assert show_app_logs(stream) is handler, "a second call adds no second handler"
        record = {"event": "playback", "decision": "premium_required", "video": "v"}
        logging.getLogger("vidgate.playback").info(json.dumps(record))
        logging.getLogger("vidgate.playback").debug("not at INFO")
    finally:
        logging.getLogger("vidgate").removeHandler(handler)
    (line,) = stream.getvalue().splitlines()
    assert " INFO vidgate.playback " in line
    assert json.loads(line.split(" vidgate.playback ", 1)[1]) == record


# --------------------------------------------------------------------------- signals


def test_the_signal_handler_only_counts_signals() -> None:
    flag = SignalFlag()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        flag.install()
        assert not flag
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        assert flag
        assert flag.received == 3
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
