"""``vidgate dev`` hardened: rate limits at its front door, private state files, the
managed security headers, audit lines in its log, and a stop that never hangs.

Clients come from their own loopback addresses (all of 127/8 is loopback; the
edge takes the client's address from the socket), so the shared stack's usual
client, 127.0.0.1, keeps its whole budget for the other tests.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.local.ports import LOOPBACK, free_port
from app.ratelimits import HTML_BODY, JSON_BODY, RATE_RULES
from tests.conftest import TEST_AUTH_LIMIT
from tests.integration.test_watch_pages import grant_for, sign_in
from tests.stackproc import MEDIA_CACHE, ROOT, RunningStack, start_stack

pytestmark = pytest.mark.integration

TIMEOUT = 30  # seconds: a bound on failure only
LIMITS = {rule.name: rule for rule in RATE_RULES}
ABUSER = "127.0.0.77"
NORMAL_CLIENTS = [f"127.0.0.{n}" for n in range(100, 120)]
STOP_BOUND = 10.0  # seconds from the signals to the process gone (the bound)


def _send(
    base: str,
    source: str,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(
        parts.hostname or LOOPBACK, parts.port, timeout=TIMEOUT, source_address=(source, 0)
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, answer_headers, response.read()
    finally:
        connection.close()


# --------------------------------------------------------------------------- rate limits


def _normal_visit(site: str, source: str, poster: str) -> list[tuple[str, int]]:
    """What a person browsing does: pages, the catalog API, a poster, the sign-in form."""
    seen = []
    for _ in range(2):
        for path in ("/", "/api/videos?limit=2", poster, "/auth/sign-in", "/static/vidgate.css"):
            status, _, _ = _send(site, source, "GET", path)
            seen.append((path, status))
    return seen


def _abuse(site: str) -> dict[str, list[tuple[int, dict[str, str], bytes]]]:
    """One client hammering the sign-in form, then the grant API, a few past each limit."""
    sign_ins = [
        _send(site, ABUSER, "POST", "/auth/sign-in", body=b"identifier=a&password=b",
              headers={"Content-Type": "application/x-www-form-urlencoded"})
        for _ in range(TEST_AUTH_LIMIT + 3)
    ]  # fmt: skip
    grants = [
        _send(site, ABUSER, "POST", "/api/videos/free-sampler/playback", body=b"{}",
              headers={"Content-Type": "application/json"})
        for _ in range(LIMITS["grants"].limit + 3)
    ]  # fmt: skip
    return {"sign_ins": sign_ins, "grants": grants}


def test_one_abusive_client_is_limited_while_twenty_normal_clients_see_no_errors(
    dev_stack: RunningStack,
) -> None:
    site = dev_stack.site_url
    listing = json.loads(_send(site, NORMAL_CLIENTS[0], "GET", "/api/videos?limit=1")[2])
    poster = urlsplit(listing["items"][0]["poster_url"]).path
    with ThreadPoolExecutor(max_workers=len(NORMAL_CLIENTS) + 1) as pool:
        abuse = pool.submit(_abuse, site)
        visits = [pool.submit(_normal_visit, site, ip, poster) for ip in NORMAL_CLIENTS]
        abused = abuse.result(timeout=300)
        normal = [visit.result(timeout=300) for visit in visits]

    for client, seen in zip(NORMAL_CLIENTS, normal, strict=True):
        assert [status for _, status in seen] == [200] * len(seen), (client, seen)

    sign_ins = [status for status, _, _ in abused["sign_ins"]]
    # The shared stack raises only the sign-in count (tests/conftest.py); the rule is the same.
    limit = TEST_AUTH_LIMIT
    assert 429 not in sign_ins[:limit], "the limit is exactly the configured one, locally"
    assert set(sign_ins[:limit]) == {403}, "refused by the web app (no CSRF token), not the edge"
    assert sign_ins[limit:] == [429] * 3
    _, headers, body = abused["sign_ins"][-1]
    assert headers["content-type"].startswith("text/html")
    assert body.decode() == HTML_BODY
    assert 1 <= int(headers["retry-after"]) <= LIMITS["auth"].window_seconds

    grants = [status for status, _, _ in abused["grants"]]
    limit = LIMITS["grants"].limit
    assert set(grants[:limit]) == {401}, "no token: the API refuses, the edge lets it through"
    assert grants[limit:] == [429] * 3
    _, headers, body = abused["grants"][-1]
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == json.loads(JSON_BODY)
    assert json.loads(body)["error"] == "rate_limited"
    assert int(headers["retry-after"]) >= 1

    # The abuser is still refused, everyone else still served.
    assert _send(site, ABUSER, "POST", "/auth/sign-in", body=b"")[0] == 429
    assert _send(site, NORMAL_CLIENTS[0], "POST", "/auth/sign-in", body=b"")[0] == 403


# --------------------------------------------------------------------------- headers, files, log


def test_the_site_sends_the_managed_security_headers_and_keeps_the_web_apps_own(
    dev_stack: RunningStack,
) -> None:
    site = dev_stack.site_url
    _, page, _ = _send(site, "127.0.0.90", "GET", "/")
    listing = json.loads(_send(site, "127.0.0.90", "GET", "/api/videos?limit=1")[2])
    poster_path = urlsplit(listing["items"][0]["poster_url"]).path
    _, poster, _ = _send(site, "127.0.0.90", "GET", poster_path)
    # The web app's own values win (the policy's "override origin" is off for these) ...
    assert page["x-frame-options"] == "DENY"
    assert page["referrer-policy"] == "same-origin"
    # ... and what it does not send, the edge adds, as the distribution's policy does.
    assert page["x-xss-protection"] == "1; mode=block"
    assert page["x-content-type-options"] == "nosniff"
    assert poster["x-frame-options"] == "SAMEORIGIN"
    assert poster["referrer-policy"] == "strict-origin-when-cross-origin"
    assert poster["x-content-type-options"] == "nosniff"
    assert poster["x-xss-protection"] == "1; mode=block"
    for headers in (page, poster):
        assert "strict-transport-security" not in headers  # plain HTTP on loopback


def test_the_state_files_that_hold_secrets_are_readable_by_their_owner_only(
    dev_stack: RunningStack,
) -> None:
    for name in ("dev.env", "dev-stack.json", "web-secret-key"):
        mode = stat.S_IMODE((dev_stack.state_dir / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert "VIDGATE_SECRET_KEY=" in (dev_stack.state_dir / "dev.env").read_text()


def _audit_lines(stack: RunningStack) -> list[dict[str, object]]:
    records = []
    for line in list(stack.output):
        _, marker, rest = line.partition(" vidgate.playback ")
        if marker:
            records.append(json.loads(rest))
    return records


def test_grants_and_refusals_appear_in_the_dev_log(dev_stack: RunningStack) -> None:
    alice = sign_in(dev_stack, "alice")
    bob = sign_in(dev_stack, "bob")
    assert grant_for(dev_stack, alice, "premium-aurora").status_code == 200
    assert grant_for(dev_stack, bob, "premium-aurora").status_code == 403
    deadline = time.monotonic() + TIMEOUT  # the log reaches us through a pipe
    wanted = {("premium-aurora", "grant"), ("premium-aurora", "premium_required")}
    while True:
        seen = {(r.get("video"), r.get("decision")) for r in _audit_lines(dev_stack)}
        if wanted <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert wanted <= seen, [line for line in dev_stack.output if "vidgate." in line][-20:]
    granted = next(r for r in _audit_lines(dev_stack) if r.get("decision") == "grant")
    assert granted["event"] == "playback" and granted["expires_at"]


# --------------------------------------------------------------------------- stopping


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat_line = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat_line.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _gone(pid: int) -> bool:
    try:
        return "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:1]
    except OSError:
        return True


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize(
    "signals",
    [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGTERM)],
    ids=["TERM+TERM", "INT+TERM"],
)
def test_two_signals_in_quick_succession_stop_the_running_stack_within_ten_seconds(
    tmp_path: Path, signals: tuple[int, int]
) -> None:
    stack = start_stack(tmp_path / "stack")
    children = _children(stack.process.pid)
    ports = [int(u.rsplit(":", 1)[1]) for u in (stack.web_url, stack.edge_url, stack.aws_endpoint)]
    for sig in signals:
        stack.process.send_signal(sig)
    try:
        code = stack.process.wait(timeout=STOP_BOUND)
    except subprocess.TimeoutExpired:
        stack.process.kill()
        stack.process.wait(timeout=10)
        pytest.fail("vidgate dev hung after two signals:\n" + "\n".join(stack.output[-30:]))
    assert code == 0
    assert all(_gone(child) for child in children)
    assert all(_port_free(port) for port in ports)


def test_a_signal_while_the_stack_starts_stops_it_before_it_is_ready(
    tmp_path: Path, dev_stack: RunningStack
) -> None:
    # dev_stack has filled the media cache: this start bootstraps without encoding video.
    state = tmp_path / "stack"
    state.mkdir()
    shutil.copytree(MEDIA_CACHE, state / "media")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIDGATE_"))}
    env["PYTHONUNBUFFERED"] = "1"
    ports = [free_port(), free_port(), free_port()]
    process = subprocess.Popen(
        [sys.executable, "-m", "app.ops", "dev", "--port", str(ports[0]),
         "--aws-port", str(ports[1]), "--edge-port", str(ports[2]), "--state-dir", str(state)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    bootstrapping = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if "bootstrapping" in line:
                bootstrapping.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        assert bootstrapping.wait(timeout=120), "\n".join(lines[-30:])
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=STOP_BOUND)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert code == 0
    assert "ready" not in lines
    assert "stopped before the stack was ready" in lines
    assert all(_port_free(port) for port in ports)
