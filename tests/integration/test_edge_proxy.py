"""The local edge as the front door: everything but media is proxied to the web app.

A recording Flask app stands in for the web app, served the way ``vidgate dev``
serves the real one (werkzeug, behind :func:`app.local.webserver.behind_edge`);
the edge in front of it also serves a private bucket on ``/videos/*`` and
``/posters/*``. Requests go over real sockets, byte for byte where framing
matters. Streaming is shown by ordering, not timing: the far side signals
when the first bytes arrive, and the near side holds back the rest until then.
``FrontStack`` / ``start_front_stack`` are shared with ``test_edge_cookies.py``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import requests
from flask import Flask, Response, request

from app.local.edge import EdgeApp, EdgeServer, serve_edge
from app.local.ports import LOOPBACK, free_port
from app.local.proxy import OriginProxy
from app.local.webserver import ServerHandle, behind_edge, serve_wsgi
from app.signing import object_key_to_path, public_key_pem
from app.web.apigw import mount_api
from tests.integration.test_edge import (
    NOW,
    TRUSTED,
    FakeClock,
    create_private_bucket,
    error_code,
    private_key,
)

pytestmark = pytest.mark.integration

TIMEOUT = 20  # seconds: only a bound on failure, never a measured duration
PIECE = 64 * 1024
MISSING_KEY_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>MissingKey</Code>'
    b"<Message>Missing Key-Pair-Id query parameter or cookie value</Message></Error>"
)
MEDIA: dict[str, bytes] = {
    "videos/a/hls/master.m3u8": b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n",
    "videos/a/hls/720p/index.m3u8": b"#EXTM3U\n#EXTINF:2.0,\nseg1.m4s\n",
    "videos/a/hls/720p/seg1.m4s": b"\x00\x00\x00\x18styp" + b"a" * 4000,
    "videos/a/clip.mp4": b"\x00\x00\x00\x20ftypisom" + b"m" * 3000,
    "videos/b/hls/master.m3u8": b"#EXTM3U\n# video b\n",
    "videos/ab/hls/master.m3u8": b"#EXTM3U\n# video ab\n",
    "posters/a.jpg": b"\xff\xd8poster-a\xff\xd9",
}


# --------------------------------------------------------------------------- the web app


@dataclass
class Recorder:
    """What the stand-in web app saw; events the tests and the app hand each other."""

    started: list[str] = field(default_factory=list)
    completed: list[dict[str, Any]] = field(default_factory=list)
    upstream_got_first: threading.Event = field(default_factory=threading.Event)
    client_got_first: threading.Event = field(default_factory=threading.Event)
    overlapped: list[bool] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    grants: dict[str, list[str]] = field(default_factory=dict)  # video id → Set-Cookie values

    def reset(self) -> None:
        self.started.clear()
        self.completed.clear()
        self.upstream_got_first.clear()
        self.client_got_first.clear()
        self.overlapped.clear()


def _echo_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A Lambda handler answering with what API Gateway told it about the caller."""
    return {"statusCode": 200, "body": json.dumps(event["requestContext"]["http"])}


def make_web_app(recorder: Recorder) -> Flask:
    app = Flask("edge-proxy-test-web-app")
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    @app.before_request
    def _start() -> None:
        recorder.started.append(request.path)

    @app.route("/echo", methods=methods)
    @app.route("/echo/<path:rest>", methods=methods)
    def echo(rest: str = "") -> Response:
        digest, length = hashlib.sha256(), 0
        while piece := request.stream.read(PIECE):
            digest.update(piece)
            length += len(piece)
        seen = {
            "method": request.method,
            "target": request.environ.get("RAW_URI"),
            "headers": [[name, value] for name, value in request.headers.items()],
            "remote_addr": request.remote_addr,
            "scheme": request.scheme,
            "host": request.host,
            "connected_from": request.environ["werkzeug.proxy_fix.orig"]["REMOTE_ADDR"],
            "host_header": request.environ["werkzeug.proxy_fix.orig"]["HTTP_HOST"],
            "length": length,
            "sha256": digest.hexdigest(),
        }
        recorder.completed.append(seen)
        return Response(json.dumps(seen), content_type="application/json")

    @app.route("/status/<int:code>", methods=methods)
    def status(code: int) -> Response:
        body = b"" if code in (204, 304) else f"answer {code}".encode()
        answer = Response(body, status=code, content_type="text/plain")
        if 300 <= code < 400 and code != 304:
            answer.headers["Location"] = "/echo?from=redirect"
        return answer

    @app.get("/cookies")
    def cookies() -> Response:
        answer = Response("two cookies", content_type="text/plain")
        answer.set_cookie("first", "1", path="/", httponly=True)
        answer.set_cookie("second", "2", path="/videos/a/hls/", samesite="Lax")
        answer.headers.add("X-Repeated", "one")
        answer.headers.add("X-Repeated", "two")
        return answer

    @app.get("/hop")
    def hop() -> Response:
        answer = Response("hop", content_type="text/plain")
        for name, value in (
            ("Connection", "X-Secret-Hop"),
            ("X-Secret-Hop", "drop me"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Authenticate", 'Basic realm="x"'),
            ("Upgrade", "h2c"),
            ("Trailer", "X-Checksum"),
            ("X-End-To-End", "kept"),
        ):
            answer.headers.add(name, value)
        return answer

    @app.get("/download")
    def download() -> Response:
        size = int(request.args.get("size", "0"))
        piece = b"d" * PIECE
        wait = request.args.get("wait") == "1"

        def body() -> Iterator[bytes]:
            yield b"first bytes|"
            if wait:  # hold the rest back until the client has the first bytes
                recorder.overlapped.append(recorder.client_got_first.wait(TIMEOUT))
            sent = 0
            while sent < size:
                chunk = piece[: size - sent]
                sent += len(chunk)
                yield chunk

        return Response(body(), content_type="application/octet-stream")

    @app.route("/upload", methods=["POST", "PUT"])
    def upload() -> Response:
        stream = request.stream
        digest, length = hashlib.sha256(), 0
        first = stream.read(1024)
        recorder.upstream_got_first.set()
        while first:
            digest.update(first)
            length += len(first)
            first = stream.read(PIECE)
        recorder.completed.append({"length": length})
        return Response(json.dumps({"length": length, "sha256": digest.hexdigest()}))

    @app.post("/grant/<video_id>")
    def grant(video_id: str) -> Response:
        """Sets the cookies the test prepared, as the web app's grant route sets its own."""
        answer = Response(json.dumps({"video": video_id}), content_type="application/json")
        for cookie in recorder.grants[video_id]:
            answer.headers.add("Set-Cookie", cookie)
        return answer

    @app.get("/hang")
    def hang() -> Response:
        recorder.release.wait(TIMEOUT)
        return Response("late")

    mount_api(app, {"/api": _echo_handler})
    return app


# --------------------------------------------------------------------------- the stack


@dataclass
class FrontStack:
    """A bucket, the stand-in web app, and the edge in front of both."""

    bucket: str
    s3: Any
    clock: FakeClock
    recorder: Recorder
    web: ServerHandle
    edge: EdgeServer
    app: EdgeApp

    @property
    def base(self) -> str:
        return self.edge.url

    @property
    def port(self) -> int:
        return self.edge.port

    def url(self, key: str) -> str:
        return self.base + object_key_to_path(key)

    def stop(self) -> None:
        self.recorder.release.set()
        self.edge.stop()
        self.web.stop()


def trusted_keys() -> dict[str, bytes]:
    return {TRUSTED["ec"]: public_key_pem(private_key("ec"))}


def start_front_stack(session: boto3.Session, *, timeout: float = TIMEOUT) -> FrontStack:
    s3 = session.client("s3")
    bucket = create_private_bucket(s3, MEDIA)
    recorder = Recorder()
    web = serve_wsgi(behind_edge(make_web_app(recorder)), 0, name="edge-proxy-test-web")
    clock = FakeClock(NOW)
    app = EdgeApp(
        s3_client=s3,
        bucket=bucket,
        trusted_keys=trusted_keys(),
        origin=OriginProxy(f"http://{LOOPBACK}:{web.port}", timeout=timeout),
        clock=clock,
    )
    return FrontStack(bucket, s3, clock, recorder, web, serve_edge(app), app)


@pytest.fixture(scope="module")
def front(boto_session: boto3.Session) -> Iterator[FrontStack]:
    started = start_front_stack(boto_session)
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def _fresh(front: FrontStack) -> None:
    front.recorder.reset()
    front.clock.now = NOW


def connect(front: FrontStack, *, source: str | None = None) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(
        LOOPBACK,
        front.port,
        timeout=TIMEOUT,
        source_address=(source, 0) if source else None,
    )


def send_raw(port: int, data: bytes, *, half_close: bool = False) -> tuple[int, bytes]:
    """Write ``data`` as is on a fresh connection; the status and whole answer."""
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0
    return status, answer


def header_list(response: http.client.HTTPResponse) -> list[tuple[str, str]]:
    return [(name.lower(), value) for name, value in response.getheaders()]


def seen_headers(echo: dict[str, Any]) -> dict[str, str]:
    return {name.lower(): value for name, value in echo["headers"]}


# --------------------------------------------------------------------------- routing


def test_pages_go_to_the_web_app_and_media_to_the_bucket(front: FrontStack) -> None:
    page = requests.get(front.base + "/echo/some/page?x=1", timeout=TIMEOUT)
    assert page.status_code == 200
    assert page.json()["target"] == "/echo/some/page?x=1"
    poster = requests.get(front.url("posters/a.jpg"), timeout=TIMEOUT)
    assert (poster.status_code, poster.content) == (200, MEDIA["posters/a.jpg"])
    video = requests.get(front.url("videos/a/clip.mp4"), timeout=TIMEOUT)
    assert (video.status_code, video.content) == (403, MISSING_KEY_BODY)
    assert video.headers["Content-Type"] == "text/xml"
    assert "/echo/some/page" in front.recorder.started
    assert not any(path.startswith(("/videos", "/posters")) for path in front.recorder.started)


@pytest.mark.parametrize("path", ["/videos", "/VIDEOS/a/clip.mp4", "/posters", "/video/a"])
def test_paths_outside_the_media_patterns_are_the_web_apps(front: FrontStack, path: str) -> None:
    # CloudFront path patterns are case-sensitive and "videos/*" needs the slash.
    answer = requests.get(front.base + path, timeout=TIMEOUT)
    assert answer.status_code == 404
    assert path in front.recorder.started


@pytest.mark.parametrize("path", ["/videos/a/clip.mp4", "/posters/a.jpg"])
def test_the_media_behaviours_allow_only_get_and_head(front: FrontStack, path: str) -> None:
    answer = requests.post(front.base + path, data=b"x", timeout=TIMEOUT)
    assert answer.status_code == 403
    assert error_code(answer.content) == "MethodNotAllowed"
    assert path not in front.recorder.started


# --------------------------------------------------------------------------- status and headers


@pytest.mark.parametrize("code", [200, 201, 204, 301, 302, 304, 400, 404, 409, 418, 500, 503])
def test_the_web_apps_status_and_body_come_back_unchanged(front: FrontStack, code: int) -> None:
    answer = requests.get(f"{front.base}/status/{code}", allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == code
    assert answer.content == (b"" if code in (204, 304) else f"answer {code}".encode())
    if code in (301, 302):
        assert answer.headers["Location"] == "/echo?from=redirect"


def test_repeated_response_headers_are_all_relayed(front: FrontStack) -> None:
    connection = connect(front)
    connection.request("GET", "/cookies")
    response = connection.getresponse()
    headers = header_list(response)
    assert response.read() == b"two cookies"
    cookies = [value for name, value in headers if name == "set-cookie"]
    assert len(cookies) == 2
    assert cookies[0].startswith("first=1;") and "HttpOnly" in cookies[0]
    assert cookies[1].startswith("second=2;") and "Path=/videos/a/hls/" in cookies[1]
    assert [value for name, value in headers if name == "x-repeated"] == ["one", "two"]
    assert [name for name, _ in headers].count("server") == 1
    assert [name for name, _ in headers].count("date") == 1


def test_hop_by_hop_response_headers_are_dropped(front: FrontStack) -> None:
    connection = connect(front)
    connection.request("GET", "/hop")
    response = connection.getresponse()
    names = {name for name, _ in header_list(response)}
    assert response.read() == b"hop"
    assert "x-end-to-end" in names
    for dropped in ("x-secret-hop", "keep-alive", "proxy-authenticate", "upgrade", "trailer"):
        assert dropped not in names
    # The only Connection field is the edge's own.
    assert response.getheader("Connection") == "close"


def test_hop_by_hop_request_headers_are_dropped_and_the_rest_kept(front: FrontStack) -> None:
    connection = connect(front)
    connection.putrequest("GET", "/echo", skip_accept_encoding=True)
    for name, value in (
        ("Connection", "keep-alive, X-Named-Hop"),
        ("X-Named-Hop", "drop me"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Trailer", "X-Checksum"),
        ("Upgrade", "websocket"),
        ("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"),
        ("Proxy-Connection", "keep-alive"),
        ("Authorization", "Bearer end-to-end"),
        ("Cookie", "a=1; b=2"),
        ("X-Custom", "kept"),
    ):
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 200
    seen = seen_headers(json.loads(response.read()))
    for dropped in (
        "connection",
        "x-named-hop",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
    ):
        assert dropped not in seen, dropped
    assert seen["authorization"] == "Bearer end-to-end"
    assert seen["cookie"] == "a=1; b=2"
    assert seen["x-custom"] == "kept"


def test_head_is_forwarded_and_answered_without_a_body(front: FrontStack) -> None:
    get = requests.get(f"{front.base}/status/200", timeout=TIMEOUT)
    connection = connect(front)
    connection.request("HEAD", "/status/200")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Length") == get.headers["Content-Length"] == "10"
    assert response.read() == b""
    assert front.recorder.started.count("/status/200") == 2


# --------------------------------------------------------------------------- X-Forwarded-*


def test_the_client_address_reaches_the_web_app_and_a_forged_one_does_not(
    front: FrontStack,
) -> None:
    connection = connect(front, source="127.0.0.2")
    connection.request(
        "GET",
        "/echo",
        headers={
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https",
        },
    )
    echo = json.loads(connection.getresponse().read())
    seen = seen_headers(echo)
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.2"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == f"{LOOPBACK}:{front.port}"
    assert echo["remote_addr"] == "127.0.0.2"  # one trusted hop: the last entry
    assert echo["connected_from"] == LOOPBACK  # the edge itself
    assert echo["scheme"] == "http"
    assert echo["host"] == f"{LOOPBACK}:{front.port}"
    assert echo["host_header"] == f"{LOOPBACK}:{front.web.port}"


def test_the_api_gateway_shim_reports_the_client_as_source_ip(front: FrontStack) -> None:
    connection = connect(front, source="127.0.0.3")
    connection.request("GET", "/api/whoami", headers={"X-Forwarded-For": "198.51.100.7"})
    response = connection.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["sourceIp"] == "127.0.0.3"


# --------------------------------------------------------------------------- streaming


def test_a_download_streams_the_first_bytes_before_the_body_ends(front: FrontStack) -> None:
    connection = connect(front)
    connection.request("GET", "/download?size=1048576&wait=1")
    response = connection.getresponse()
    first = response.read1(PIECE)
    assert first.startswith(b"first")
    front.recorder.client_got_first.set()
    rest = response.read()
    assert len(first) + len(rest) == len(b"first bytes|") + 1_048_576
    assert front.recorder.overlapped == [True], "the edge held the body back"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_upload_reaches_the_web_app_before_the_client_finishes(
    front: FrontStack, chunked: bool
) -> None:
    head, tail_pieces = b"h" * PIECE, 16
    overlapped: list[bool] = []

    def body() -> Iterator[bytes]:
        yield head
        overlapped.append(front.recorder.upstream_got_first.wait(TIMEOUT))
        for _ in range(tail_pieces):
            yield b"t" * PIECE

    total = PIECE * (1 + tail_pieces)
    headers = {} if chunked else {"Content-Length": str(total)}
    connection = connect(front)
    connection.request("POST", "/upload", body=body(), headers=headers, encode_chunked=chunked)
    response = connection.getresponse()
    assert response.status == 200
    answer = json.loads(response.read())
    expected = hashlib.sha256(head + b"t" * PIECE * tail_pieces).hexdigest()
    assert answer == {"length": total, "sha256": expected}
    assert overlapped == [True], "the edge buffered the upload"


def test_32_mib_each_way_passes_without_being_held_in_memory(front: FrontStack) -> None:
    size = 32 * 1024 * 1024
    piece = b"u" * PIECE
    tracemalloc.start()
    try:
        connection = connect(front)
        connection.request(
            "PUT", "/upload", body=(piece for _ in range(size // PIECE)), encode_chunked=True
        )
        uploaded = json.loads(connection.getresponse().read())
        connection = connect(front)
        connection.request("GET", f"/download?size={size}")
        response = connection.getresponse()
        received = 0
        while chunk := response.read1(PIECE):
            received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert uploaded["length"] == size
    assert received == len(b"first bytes|") + size
    # Holding either body whole would take 32 MiB; werkzeug's own post-request drain
    # reads 10 MB at a time (an allocation, even on an empty socket), hence half.
    assert peak < size // 2, f"peak {peak} bytes for {size} bytes each way"


# --------------------------------------------------------------------------- request smuggling


def fresh_path() -> str:
    """A path no other request used: late requests of earlier tests cannot pass for it."""
    return f"/echo/{uuid.uuid4().hex}"


def _request(headers: str, body: bytes = b"", *, path: str, version: str = "HTTP/1.1") -> bytes:
    return f"POST {path} {version}\r\nHost: x\r\n{headers}\r\n".encode() + body


SMUGGLING = [
    ("cl-and-te", "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n", 400),
    ("te-and-cl", "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", b"0\r\n\r\n", 400),
    ("two-differing-cl", "Content-Length: 4\r\nContent-Length: 5\r\n", b"abcde", 400),
    ("differing-cl-list", "Content-Length: 4, 5\r\n", b"abcde", 400),
    ("cl-not-a-number", "Content-Length: 4x\r\n", b"abcd", 400),
    ("cl-negative", "Content-Length: -4\r\n", b"abcd", 400),
    ("cl-plus", "Content-Length: +4\r\n", b"abcd", 400),
    ("cl-space-before-colon", "Content-Length : 4\r\n", b"abcd", 400),
    ("te-space-before-colon", "Transfer-Encoding : chunked\r\n", b"0\r\n\r\n", 400),
    ("te-obs-fold", "Transfer-Encoding:\r\n chunked\r\n", b"0\r\n\r\n", 400),
    ("te-not-chunked", "Transfer-Encoding: identity\r\n", b"", 400),
    ("te-chunked-not-last", "Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n", 400),
    ("te-chunked-twice", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"", 400),
    ("te-xchunked", "Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n", 400),
    ("te-unsupported-coding", "Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n", 501),
    ("bad-header-name", "X Bad: 1\r\nContent-Length: 0\r\n", b"", 400),
    ("nul-in-value", "X-Bad: a\x00b\r\nContent-Length: 0\r\n", b"", 400),
]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [case[1:] for case in SMUGGLING],
    ids=[case[0] for case in SMUGGLING],
)
def test_ambiguous_framing_is_refused_before_the_web_app_sees_anything(
    front: FrontStack, headers: str, body: bytes, status: int
) -> None:
    path = fresh_path()
    got, answer = send_raw(front.port, _request(headers, body, path=path))
    assert got == status, answer[:300]
    assert b"The request could not be satisfied" in answer
    assert b"Traceback" not in answer
    assert path not in front.recorder.started


def test_transfer_encoding_on_http_1_0_is_refused(front: FrontStack) -> None:
    path = fresh_path()
    raw = _request(
        "Transfer-Encoding: chunked\r\n", b"4\r\nabcd\r\n0\r\n\r\n", path=path, version="HTTP/1.0"
    )
    assert send_raw(front.port, raw)[0] == 400
    assert path not in front.recorder.started


def test_repeated_identical_content_lengths_are_one_length(front: FrontStack) -> None:
    path = fresh_path()
    status, answer = send_raw(
        front.port, _request("Content-Length: 4\r\nContent-Length: 4\r\n", b"abcd", path=path)
    )
    assert status == 200, answer[:300]
    seen = next(request for request in front.recorder.completed if request["target"] == path)
    assert seen["length"] == 4
    assert seen_headers(seen)["content-length"] == "4"


def test_a_well_formed_chunked_body_with_extensions_and_trailers_is_forwarded(
    front: FrontStack,
) -> None:
    body = b'4;name=value\r\nabcd\r\n3 ; q="x y"\r\nefg\r\n0\r\nX-Checksum: 1\r\n\r\n'
    path = fresh_path()
    status, answer = send_raw(
        front.port, _request("Transfer-Encoding: chunked\r\n", body, path=path)
    )
    assert status == 200, answer[:300]
    seen = next(request for request in front.recorder.completed if request["target"] == path)
    assert (seen["length"], seen["sha256"]) == (7, hashlib.sha256(b"abcdefg").hexdigest())


MALFORMED_CHUNKS = [
    ("size-not-hex", b"zz\r\nab\r\n0\r\n\r\n"),
    ("size-0x-prefix", b"0x2\r\nab\r\n0\r\n\r\n"),
    ("size-underscore", b"1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n"),
    ("size-trailing-space", b"2 \r\nab\r\n0\r\n\r\n"),
    ("size-bare-lf", b"2\nab\r\n0\r\n\r\n"),
    ("data-longer-than-size", b"2\r\nabc\r\n0\r\n\r\n"),
    ("data-without-crlf", b"2\r\nab0\r\n\r\n"),
    ("bad-extension", b"2;\r\nab\r\n0\r\n\r\n"),
    ("bad-trailer", b"2\r\nab\r\n0\r\nnot a trailer\r\n\r\n"),
    ("no-last-chunk", b"2\r\nab\r\n"),
    ("ends-inside-a-chunk", b"8\r\nab"),
    ("huge-size-line", b"2;" + b"x" * 5000 + b"\r\nab\r\n0\r\n\r\n"),
]


@pytest.mark.parametrize(
    "body", [case[1] for case in MALFORMED_CHUNKS], ids=[case[0] for case in MALFORMED_CHUNKS]
)
def test_a_malformed_chunked_body_is_400_and_never_a_complete_request(
    front: FrontStack, body: bytes
) -> None:
    path = fresh_path()
    raw = _request("Transfer-Encoding: chunked\r\n", body, path=path)
    status, answer = send_raw(front.port, raw, half_close=True)
    assert status == 400, answer[:300]
    assert b"The request could not be satisfied" in answer
    assert path not in [request["target"] for request in front.recorder.completed]


def test_a_body_shorter_than_its_content_length_is_400(front: FrontStack) -> None:
    path = fresh_path()
    raw = _request("Content-Length: 10\r\n", b"abc", path=path)
    assert send_raw(front.port, raw, half_close=True)[0] == 400
    assert path not in [request["target"] for request in front.recorder.completed]


def test_a_get_with_a_body_is_refused_as_cloudfront_does(front: FrontStack) -> None:
    path = fresh_path()
    for target in (path, "/videos/a/clip.mp4"):
        raw = f"GET {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi".encode()
        assert send_raw(front.port, raw)[0] == 403
    assert path not in front.recorder.started


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "CONNECT"])
def test_methods_a_distribution_cannot_forward_are_refused(front: FrontStack, method: str) -> None:
    path = fresh_path()
    target = "127.0.0.1:443" if method == "CONNECT" else path
    status, answer = send_raw(front.port, f"{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 403, answer[:200]
    assert path not in front.recorder.started


# --------------------------------------------------------------------------- a failing web app


def _edge_to(front: FrontStack, origin: str, timeout: float = TIMEOUT) -> EdgeServer:
    app = EdgeApp(
        s3_client=front.s3,
        bucket=front.bucket,
        trusted_keys=trusted_keys(),
        origin=OriginProxy(origin, timeout=timeout),
        clock=front.clock,
    )
    return serve_edge(app)


def test_a_web_app_that_is_down_gives_a_502_page(front: FrontStack) -> None:
    with _edge_to(front, f"http://{LOOPBACK}:{free_port()}") as edge:
        page = requests.get(edge.url + "/", timeout=TIMEOUT)
        poster = requests.get(edge.url + "/posters/a.jpg", timeout=TIMEOUT)
    assert page.status_code == 502
    assert page.headers["Content-Type"].startswith("text/html")
    assert "could not connect to the web app" in page.text
    assert "Traceback" not in page.text and "Errno" not in page.text
    assert (poster.status_code, poster.content) == (200, MEDIA["posters/a.jpg"])


def test_a_web_app_that_does_not_answer_in_time_gives_a_504_page(front: FrontStack) -> None:
    with _edge_to(front, f"http://{LOOPBACK}:{front.web.port}", timeout=0.5) as edge:
        page = requests.get(edge.url + "/hang", timeout=TIMEOUT)
    front.recorder.release.set()
    assert page.status_code == 504
    assert "took too long" in page.text


def _one_shot_origin(reply: bytes) -> tuple[int, threading.Thread]:
    """An origin that reads one request, writes ``reply`` and hangs up."""
    listener = socket.create_server((LOOPBACK, 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nhello",
    ],
    ids=["chunked", "content-length"],
)
def test_a_body_that_breaks_off_never_looks_complete(front: FrontStack, reply: bytes) -> None:
    port, thread = _one_shot_origin(reply)
    with _edge_to(front, f"http://{LOOPBACK}:{port}") as edge:
        connection = http.client.HTTPConnection(LOOPBACK, edge.port, timeout=TIMEOUT)
        connection.request("GET", "/anything")
        response = connection.getresponse()
        assert response.status == 200
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            response.read()
    thread.join(TIMEOUT)


def test_an_answer_that_is_not_http_gives_a_502_page(front: FrontStack) -> None:
    port, thread = _one_shot_origin(b"SSH-2.0-OpenSSH\r\n\r\n")
    with _edge_to(front, f"http://{LOOPBACK}:{port}") as edge:
        page = requests.get(edge.url + "/", timeout=TIMEOUT)
    thread.join(TIMEOUT)
    assert page.status_code == 502


@pytest.mark.parametrize(
    "origin", ["https://127.0.0.1:1", "http://127.0.0.1:1/prefix", "ftp://x", "http://"]
)
def test_the_origin_must_be_a_plain_http_host_and_port(origin: str) -> None:
    with pytest.raises(ValueError, match="origin"):
        OriginProxy(origin)


def test_posters_must_stay_a_media_path_when_there_is_an_origin(front: FrontStack) -> None:
    with pytest.raises(ValueError, match="public prefixes"):
        EdgeApp(
            s3_client=front.s3,
            bucket=front.bucket,
            trusted_keys=trusted_keys(),
            origin=OriginProxy(f"http://{LOOPBACK}:{front.web.port}"),
            media_prefixes=("videos/",),
        )


def test_a_multipart_form_upload_reaches_the_web_app_whole(front: FrontStack) -> None:
    """A form with a file (multipart Content-Type) is not a malformed header block."""
    body = b"\x00\x01" * 5000
    answer = requests.post(
        front.base + "/echo/form", files={"poster": ("p.jpg", body)}, timeout=TIMEOUT
    )
    assert answer.status_code == 200, answer.text[:300]
    seen = answer.json()
    assert seen_headers(seen)["content-type"].startswith("multipart/form-data; boundary=")
    assert seen["length"] == int(seen_headers(seen)["content-length"]) > len(body)
