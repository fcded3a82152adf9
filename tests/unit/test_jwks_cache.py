"""JwksCache: rate-limited refetch, single flight, outages, bad documents, the urllib fetcher."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app.auth import CognitoVerifier, JwksUnavailableError, UnknownKeyIdError
from app.auth.jwks import MAX_JWKS_BYTES, JwksCache, JwksFetchError, parse_jwks, urllib_fetch
from app.errors import ConfigurationError
from app.local.ports import LOOPBACK, free_port
from tests.unit.tokens import (
    JWKS_URL,
    KID,
    FakeClock,
    FakeJwksEndpoint,
    access_claims,
    jwks_bytes,
    jwks_document,
    make_verifier,
    mint,
    rsa_key,
)

PENALTY = 10.0


def cache_for(endpoint: FakeJwksEndpoint, clock: FakeClock) -> JwksCache:
    return JwksCache(JWKS_URL, fetch=endpoint, clock=clock, penalty_seconds=PENALTY)


def flood(verifier: CognitoVerifier, count: int, prefix: str) -> None:
    for i in range(count):
        with pytest.raises(UnknownKeyIdError):
            verifier.verify(mint(access_claims(), kid=f"{prefix}-{i}"))


# --------------------------------------------------------------------------- penalty box


def test_a_flood_of_unknown_kids_costs_one_fetch_per_window() -> None:
    endpoint, clock = FakeJwksEndpoint(), FakeClock(0)
    jwks = cache_for(endpoint, clock)
    verifier = make_verifier(jwks)

    flood(verifier, 100, "made-up")
    assert endpoint.fetches == 1
    assert verifier.verify(mint(access_claims())).username == "alice"  # cached key, no fetch
    clock.advance(PENALTY - 0.5)
    flood(verifier, 100, "still-made-up")
    assert endpoint.fetches == 1

    clock.advance(1)
    flood(verifier, 100, "later")
    assert endpoint.fetches == 2
    assert jwks.fetch_count == 2


def test_a_rotated_key_is_picked_up_after_the_window_and_a_removed_key_dropped() -> None:
    endpoint, clock = FakeJwksEndpoint(), FakeClock(0)
    verifier = make_verifier(cache_for(endpoint, clock))
    old_token = mint(access_claims())
    verifier.verify(old_token)

    endpoint.serve(rsa_key("rotated"))
    new_token = mint(access_claims(), key=rsa_key("rotated"))
    with pytest.raises(UnknownKeyIdError):
        verifier.verify(new_token)  # inside the window: no fetch
    assert endpoint.fetches == 1

    clock.advance(PENALTY)
    assert verifier.verify(new_token).username == "alice"
    assert endpoint.fetches == 2
    with pytest.raises(UnknownKeyIdError):  # not cached as a claim: a fresh token of the old key
        verifier.verify(mint(access_claims(jti="fresh")))


def test_cached_keys_never_trigger_a_fetch() -> None:
    endpoint, clock = FakeJwksEndpoint(), FakeClock(0)
    jwks = cache_for(endpoint, clock)
    for _ in range(50):
        jwks.get_key(KID)
        clock.advance(PENALTY)
    assert endpoint.fetches == 1


def test_a_zero_penalty_refetches_on_every_miss() -> None:
    endpoint = FakeJwksEndpoint()
    jwks = JwksCache(JWKS_URL, fetch=endpoint, clock=FakeClock(0), penalty_seconds=0)
    for i in range(3):
        with pytest.raises(UnknownKeyIdError):
            jwks.get_key(f"unknown-{i}")
    assert endpoint.fetches == 3


# --------------------------------------------------------------------------- single flight


def run_in_threads(
    count: int, work: Callable[[], object]
) -> tuple[list[threading.Thread], list[object]]:
    """Start ``count`` threads that call ``work`` together; results (or errors) by index."""
    results: list[object] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[index] = work()
        except Exception as exc:  # the outcome is what the test asserts
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def release_and_join(endpoint: FakeJwksEndpoint, threads: list[threading.Thread]) -> None:
    assert endpoint.gate is not None
    assert endpoint.started.wait(timeout=10)
    time.sleep(0.1)  # let the others reach the wait; the assertions do not depend on it
    endpoint.gate.set()
    for thread in threads:
        thread.join(timeout=10)


def test_concurrent_misses_from_twenty_threads_share_one_fetch() -> None:
    endpoint = FakeJwksEndpoint(gate=threading.Event())
    jwks = cache_for(endpoint, FakeClock(0))
    threads, results = run_in_threads(20, lambda: jwks.get_key(KID))
    release_and_join(endpoint, threads)
    assert endpoint.fetches == 1
    assert [getattr(result, "kid", result) for result in results] == [KID] * 20


def test_concurrent_misses_of_an_unknown_kid_share_one_fetch_and_all_fail() -> None:
    endpoint = FakeJwksEndpoint(gate=threading.Event())
    jwks = cache_for(endpoint, FakeClock(0))
    threads, results = run_in_threads(20, lambda: jwks.get_key("nobody"))
    release_and_join(endpoint, threads)
    assert endpoint.fetches == 1
    assert [type(result) for result in results] == [UnknownKeyIdError] * 20


def test_callers_joining_a_fetch_that_hangs_give_up_and_fail_closed() -> None:
    endpoint = FakeJwksEndpoint(gate=threading.Event())
    jwks = JwksCache(JWKS_URL, fetch=endpoint, timeout=0.05)  # joiners wait 2 * 0.05 + 0.5 s
    leader = threading.Thread(target=jwks.get_key, args=(KID,))
    leader.start()
    assert endpoint.started.wait(timeout=10)
    with pytest.raises(JwksUnavailableError):
        jwks.get_key(KID)
    assert endpoint.gate is not None
    endpoint.gate.set()
    leader.join(timeout=10)
    assert jwks.get_key(KID).kid == KID  # the leader's fetch landed meanwhile
    assert endpoint.fetches == 1


# --------------------------------------------------------------------------- outages


def test_when_the_endpoint_goes_down_cached_keys_work_and_unknown_keys_are_refused() -> None:
    endpoint, clock = FakeJwksEndpoint(), FakeClock(0)
    jwks = cache_for(endpoint, clock)
    verifier = make_verifier(jwks)
    verifier.verify(mint(access_claims()))

    endpoint.down = True
    clock.advance(PENALTY)
    assert verifier.verify(mint(access_claims(jti="new"))).username == "alice"
    with pytest.raises(UnknownKeyIdError):  # 401, not 503: the set was loaded once
        verifier.verify(mint(access_claims(), kid="rotated"))
    assert endpoint.fetches == 2
    assert verifier.verify(mint(access_claims(jti="newer"))).username == "alice"


def test_a_first_load_failure_is_unavailable_and_is_rate_limited_too() -> None:
    endpoint, clock = FakeJwksEndpoint(down=True), FakeClock(0)
    jwks = cache_for(endpoint, clock)
    with pytest.raises(JwksUnavailableError):
        jwks.get_key(KID)
    with pytest.raises(JwksUnavailableError):
        jwks.get_key(KID)
    assert endpoint.fetches == 1

    endpoint.down = False
    clock.advance(PENALTY)
    assert jwks.get_key(KID).kid == KID
    assert endpoint.fetches == 2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html>502 Bad Gateway</html>", id="not-json"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(json.dumps({"keys": [rsa_key().jwk()]}).encode("utf-16"), id="utf16-json"),
        pytest.param(b'[{"keys": []}]', id="json-array"),
        pytest.param(b'{"jwks": []}', id="no-keys"),
        pytest.param(b'{"keys": {"kid": "key-1"}}', id="keys-not-a-list"),
        pytest.param(b'{"keys": null}', id="keys-null"),
        pytest.param(b'"keys"', id="json-string"),
        pytest.param(b"", id="empty-body"),
    ],
)
def test_a_malformed_jwks_document_is_a_failed_load(body: bytes) -> None:
    jwks = cache_for(FakeJwksEndpoint(body=body), FakeClock(0))
    with pytest.raises(JwksUnavailableError):
        jwks.get_key(KID)


def test_a_malformed_refresh_keeps_the_cached_keys() -> None:
    endpoint, clock = FakeJwksEndpoint(), FakeClock(0)
    jwks = cache_for(endpoint, clock)
    jwks.get_key(KID)
    endpoint.body = b"not json"
    clock.advance(PENALTY)
    with pytest.raises(UnknownKeyIdError):
        jwks.get_key("other")
    assert jwks.get_key(KID).kid == KID


def test_a_fetcher_raising_anything_fails_closed() -> None:
    def broken(url: str) -> bytes:
        raise ValueError("surprise")

    with pytest.raises(JwksUnavailableError):
        JwksCache(JWKS_URL, fetch=broken).get_key(KID)


def test_an_empty_key_set_is_loaded_and_knows_no_kid() -> None:
    jwks = cache_for(FakeJwksEndpoint(body={"keys": []}), FakeClock(0))
    with pytest.raises(UnknownKeyIdError):
        jwks.get_key(KID)


def test_a_repeated_kid_keeps_the_first_key() -> None:
    first, second = rsa_key(KID), rsa_key(KID, name="impostor")
    keys = parse_jwks(jwks_bytes(first, second))
    assert list(keys) == [KID]
    assert keys[KID].public_key.public_numbers() == first.private_key.public_key().public_numbers()


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        'data:application/json,{"keys":[]}',
        "ftp://example.com/jwks.json",
        "gopher://example.com/",
        "",
        "jwks.json",
        "/.well-known/jwks.json",
        "http://",
        "https:///.well-known/jwks.json",
    ],
)
def test_only_absolute_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ConfigurationError):
        JwksCache(url)
    with pytest.raises(ConfigurationError):
        urllib_fetch(url)


@pytest.mark.parametrize("options", [{"penalty_seconds": -1}, {"timeout": 0}, {"timeout": -2}])
def test_bad_numbers_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        JwksCache(JWKS_URL, **options)


# --------------------------------------------------------------------------- the urllib fetcher


class JwksServer:
    """A real HTTP server on loopback that serves a JWKS and records requests.

    ``drop`` makes the next N requests close the connection without an answer;
    ``hang`` makes requests wait (until ``release``) without answering.
    """

    def __init__(self) -> None:
        self.body = jwks_bytes(rsa_key())
        self.status = 200
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self.drop = 0
        self.hang = threading.Event()
        self.release = threading.Event()
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(("GET", self.path))
                if server.drop:
                    server.drop -= 1
                    self.close_connection = True
                    return
                if server.hang.is_set():
                    server.release.wait(timeout=10)
                    return
                self.send_response(server.status)
                for name, value in server.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def do_POST(self) -> None:
                server.requests.append(("POST", self.path))
                self.send_error(405)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}/us-east-1_TestPool1/.well-known/jwks.json"
        self._httpd = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def server() -> Iterator[JwksServer]:
    srv = JwksServer()
    yield srv
    srv.stop()


def test_the_default_fetcher_loads_a_real_endpoint_and_survives_its_outage(
    server: JwksServer,
) -> None:
    clock = FakeClock(0)
    jwks = JwksCache(server.url, clock=clock, penalty_seconds=PENALTY, timeout=2)
    verifier = make_verifier(jwks)
    assert verifier.verify(mint(access_claims())).username == "alice"
    assert server.requests == [("GET", "/us-east-1_TestPool1/.well-known/jwks.json")]

    server.stop()
    clock.advance(PENALTY)
    assert verifier.verify(mint(access_claims(jti="another"))).username == "alice"
    with pytest.raises(UnknownKeyIdError):
        verifier.verify(mint(access_claims(), kid="rotated"))
    assert jwks.fetch_count == 2
    with pytest.raises(JwksUnavailableError):
        JwksCache(server.url, timeout=2).get_key(KID)


@pytest.mark.parametrize("status", [404, 500, 503, 204])
def test_a_non_200_status_is_a_failure_and_is_not_retried(server: JwksServer, status: int) -> None:
    server.status = status
    with pytest.raises(JwksFetchError):
        urllib_fetch(server.url, timeout=2)
    assert len(server.requests) == 1
    with pytest.raises(JwksUnavailableError):
        JwksCache(server.url, timeout=2).get_key(KID)


def test_a_redirect_is_not_followed(server: JwksServer) -> None:
    server.status = 302
    server.headers["Location"] = "file:///etc/passwd"
    with pytest.raises(JwksFetchError):
        urllib_fetch(server.url, timeout=2)
    assert len(server.requests) == 1


def test_a_dropped_connection_is_retried_once(server: JwksServer) -> None:
    server.drop = 1
    assert json.loads(urllib_fetch(server.url, timeout=2)) == jwks_document(rsa_key())
    assert len(server.requests) == 2


def test_a_connection_dropped_twice_gives_up_after_one_retry(server: JwksServer) -> None:
    server.drop = 5
    with pytest.raises(OSError):
        urllib_fetch(server.url, timeout=2)
    assert len(server.requests) == 2


def test_a_hanging_endpoint_times_out_after_one_retry(server: JwksServer) -> None:
    server.hang.set()
    jwks = JwksCache(server.url, timeout=0.2)
    with pytest.raises(JwksUnavailableError):
        jwks.get_key(KID)
    assert len(server.requests) == 2


def test_a_refused_connection_is_a_failure() -> None:
    with pytest.raises(OSError):
        urllib_fetch(f"http://{LOOPBACK}:{free_port()}/jwks.json", timeout=2)


def test_an_oversize_document_is_refused(server: JwksServer) -> None:
    server.body = b'{"keys": [], "pad": "' + b"x" * MAX_JWKS_BYTES + b'"}'
    with pytest.raises(JwksFetchError):
        urllib_fetch(server.url, timeout=2)


def test_the_fetcher_only_ever_sends_get(server: JwksServer) -> None:
    jwks = JwksCache(server.url, clock=FakeClock(0), penalty_seconds=0, timeout=2)
    jwks.get_key(KID)
    with pytest.raises(UnknownKeyIdError):
        jwks.get_key("other")
    assert {method for method, _ in server.requests} == {"GET"}
    assert jwks.fetch_count == 2
