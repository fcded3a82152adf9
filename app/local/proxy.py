"""The local edge's web-app origin: strict HTTP/1.1 request framing and a streaming reverse proxy.

:func:`request_framing` decides how long a viewer's request body is and refuses
what a proxy must never guess at (conflicting or malformed ``Content-Length``
and ``Transfer-Encoding``, a malformed header block); :func:`body_chunks` reads
that body, decoding ``chunked`` strictly. :class:`OriginProxy` forwards a
request to the web app and streams the answer back: bodies go through in
pieces both ways, hop-by-hop headers are dropped, ``X-Forwarded-For`` /
``-Proto`` / ``-Host`` are set. The rules and their sources are in
docs/local-edge.md#front-door.
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger("vidgate.edge.proxy")

Headers = list[tuple[str, str]]

RAW_HEADERS = "vidgate.edge.raw_headers"
"""environ key: the request's header fields exactly as received, repeats and order kept."""
HEADER_DEFECTS = "vidgate.edge.header_defects"
"""environ key: true when the header block did not parse cleanly (e.g. ``Name : value``)."""
RAW_INPUT = "vidgate.edge.raw_input"
"""environ key: true when ``wsgi.input`` is the undecoded connection (the edge frames the body)."""

ALLOWED_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"})
"""What a CloudFront behaviour can forward at most (its "all methods" setting)."""
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
)
# Set by the edge itself, never taken from the viewer; Expect was already answered by the edge.
_REPLACED = frozenset(
    {"host", "content-length", "expect", "x-forwarded-host", "x-forwarded-proto", "via"}
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: CR, LF and NUL must be refused; other controls may be kept (browsers send them).
_FIELD_VALUE = re.compile(r"[^\x00\r\n]*")
_DIGITS = re.compile(r"[0-9]{1,18}")
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})"
    rb"(?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
    rb"(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|\"(?:[^\"\\\r\n]|\\[^\r\n])*\"))?)*"
    rb"\r\n"
)
_TRAILER_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n")
MAX_LINE_BYTES = 4096  # one chunk-size or trailer line
MAX_TRAILER_LINES = 64


class FramingError(Exception):
    """The viewer's request cannot be framed unambiguously: refuse it (400, or 501)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class OriginError(Exception):
    """The web app could not be reached or did not answer: 502, or 504 on a timeout."""

    def __init__(self, reason: str, status: int = 502) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Framing:
    """How the request body is delimited: a ``Content-Length``, ``chunked``, or no body."""

    length: int | None = None
    chunked: bool = False

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.length)


def is_hop_by_hop(name: str) -> bool:
    """Connection-scoped headers a proxy never forwards (RFC 9110 §7.6.1), and every ``Proxy-*``."""
    lowered = name.lower()
    return lowered in _HOP_BY_HOP or lowered.startswith("proxy-")


def connection_options(headers: Headers) -> frozenset[str]:
    """The header names a ``Connection`` field lists: hop-by-hop for this message too."""
    return frozenset(
        option.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for option in value.split(",")
        if option.strip()
    )


def request_headers(environ: Mapping[str, Any]) -> Headers:
    """The request's header fields: as received on the edge's server, else rebuilt from environ."""
    raw = environ.get(RAW_HEADERS)
    if raw is not None:
        return list(raw)
    headers: Headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").title(), str(value)))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value not in (None, ""):
            headers.append((key.replace("_", "-").title(), str(value)))
    return headers


def request_framing(environ: Mapping[str, Any], headers: Headers) -> Framing:
    """The body's framing, per RFC 9112 §6.1 and §6.3, refusing every ambiguous case.

    :raises FramingError: a malformed header block, a field name that is not a
        token or a value with CR, LF (obs-fold included) or NUL, ``Transfer-Encoding`` with
        ``Content-Length`` or on HTTP/1.0, ``chunked`` missing or not last, a
        ``Content-Length`` that is not digits, or several differing ones (400);
        a transfer coding other than ``chunked`` (501).
    """
    if environ.get(HEADER_DEFECTS):
        raise FramingError("malformed header block")
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise FramingError(f"malformed header field {name[:40]!r}")
    lengths = [
        part.strip()
        for name, value in headers
        if name.lower() == "content-length"
        for part in value.split(",")
    ]
    encodings = [value for name, value in headers if name.lower() == "transfer-encoding"]
    if encodings:
        if environ.get("SERVER_PROTOCOL") == "HTTP/1.0":
            raise FramingError("Transfer-Encoding in an HTTP/1.0 request")
        if lengths:
            raise FramingError("both Content-Length and Transfer-Encoding")
        codings = [c.strip().lower() for value in encodings for c in value.split(",")]
        if codings[-1] != "chunked" or codings.count("chunked") != 1 or "" in codings:
            raise FramingError(f"Transfer-Encoding {', '.join(codings)[:60]!r} is not chunked-last")
        if len(codings) > 1:
            raise FramingError(f"transfer codings {codings[:-1]} are not supported", status=501)
        return Framing(chunked=True)
    if lengths:
        if not all(_DIGITS.fullmatch(length) for length in lengths):
            raise FramingError("Content-Length is not a number")
        if len({int(length) for length in lengths}) != 1:
            raise FramingError(f"differing Content-Length values {lengths[:4]}")
        return Framing(length=int(lengths[0]))
    return Framing()


def _read_some(stream: Any, size: int) -> bytes:
    """Up to ``size`` bytes, as soon as some are there (``read1``), so uploads stream."""
    reader = getattr(stream, "read1", None) or stream.read
    data: bytes = reader(size)
    return data


def body_chunks(environ: Mapping[str, Any], framing: Framing, chunk_size: int) -> Iterator[bytes]:
    """The request body in pieces of at most ``chunk_size`` bytes, never whole.

    :raises FramingError: the body ends early or its chunked coding is malformed.
    """
    stream = environ["wsgi.input"]
    try:
        if framing.chunked and environ.get(RAW_INPUT):
            yield from _dechunk(stream, chunk_size)
        elif framing.chunked:  # another WSGI server decoded it already
            while piece := _read_some(stream, chunk_size):
                yield piece
        elif framing.length:
            remaining = framing.length
            while remaining:
                piece = _read_some(stream, min(chunk_size, remaining))
                if not piece:
                    raise FramingError(f"body ended {remaining} bytes short of its Content-Length")
                remaining -= len(piece)
                yield piece
    except OSError as exc:
        raise FramingError(f"request body could not be read: {exc}") from None


def _line(stream: Any, what: str) -> bytes:
    line: bytes = stream.readline(MAX_LINE_BYTES + 1)
    if not line:
        raise FramingError(f"body ended before the {what}")
    if len(line) > MAX_LINE_BYTES:
        raise FramingError(f"{what} longer than {MAX_LINE_BYTES} bytes")
    return line


def _dechunk(stream: Any, chunk_size: int) -> Iterator[bytes]:
    """Decode ``chunked`` strictly (RFC 9112 §7.1): CRLF only, hex sizes, trailers dropped."""
    while True:
        match = _CHUNK_LINE.fullmatch(_line(stream, "chunk size line"))
        if match is None:
            raise FramingError("malformed chunk size line")
        remaining = int(match.group(1), 16)
        if remaining == 0:
            break
        while remaining:
            piece = _read_some(stream, min(chunk_size, remaining))
            if not piece:
                raise FramingError("body ended inside a chunk")
            remaining -= len(piece)
            yield piece
        if stream.read(2) != b"\r\n":
            raise FramingError("chunk data not followed by CRLF")
    for _ in range(MAX_TRAILER_LINES):
        line = _line(stream, "end of the trailer section")
        if line == b"\r\n":
            return
        if not _TRAILER_LINE.fullmatch(line):
            raise FramingError("malformed trailer field")
    raise FramingError(f"more than {MAX_TRAILER_LINES} trailer fields")


class OriginResponse:
    """The web app's answer: status, reason, headers to relay, and a streamed body."""

    def __init__(
        self,
        response: http.client.HTTPResponse,
        connection: http.client.HTTPConnection,
        chunk_size: int,
        on_broken_body: Callable[[], None],
    ) -> None:
        self.status = response.status
        self.reason = response.reason
        received = response.getheaders()
        listed = connection_options(received)
        self.headers: Headers = [
            (name, value)
            for name, value in received
            if not is_hop_by_hop(name)
            and name.lower() not in listed
            and _TOKEN.fullmatch(name)
            and _FIELD_VALUE.fullmatch(value)
        ]
        self._response = response
        self._connection = connection
        self._chunk_size = chunk_size
        self._on_broken_body = on_broken_body

    def __iter__(self) -> Iterator[bytes]:
        try:
            while piece := self._response.read1(self._chunk_size):
                yield piece
        except (OSError, http.client.HTTPException) as exc:
            # The status line is gone already: break the viewer's connection so a
            # short body can never pass for a complete one.
            logger.warning("web app body broke off mid-stream: %r", exc)
            self._on_broken_body()

    def close(self) -> None:
        self._response.close()
        self._connection.close()


class OriginProxy:
    """Forwards requests to the web app at ``origin`` (``http://host:port``), streaming both ways.

    ``timeout`` bounds connecting and each wait for the web app (504 when it
    passes); ``chunk_size`` bounds each piece read from either side.
    """

    def __init__(
        self,
        origin: str,
        *,
        timeout: float = 60.0,
        chunk_size: int = 64 * 1024,
        via: str = "1.1 vidgate-edge",
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"the web-app origin must be http://host:port, got {origin!r}")
        if parts.query or parts.fragment or parts.username:
            raise ValueError(f"the web-app origin must be http://host:port, got {origin!r}")
        if chunk_size <= 0 or timeout <= 0:
            raise ValueError("chunk_size and timeout must be positive")
        self.url = f"http://{parts.netloc}"
        self._host = parts.hostname
        self._port = parts.port or 80
        self._timeout = timeout
        self._chunk_size = chunk_size
        self._via = via

    def upstream_headers(
        self,
        headers: Headers,
        *,
        framing: Framing,
        client_ip: str,
        scheme: str,
        host: str,
    ) -> Headers:
        """What the web app receives: the viewer's end-to-end fields, then the edge's own."""
        listed = connection_options(headers)
        kept = [
            (name, value)
            for name, value in headers
            if not is_hop_by_hop(name)
            and name.lower() not in listed
            and name.lower() not in _REPLACED
            and name.lower() != "x-forwarded-for"
        ]
        # Append the connecting address, as CloudFront does: the last entry is the one to trust.
        forwarded_for = [v for n, v in headers if n.lower() == "x-forwarded-for"] + [client_ip]
        via = [v for n, v in headers if n.lower() == "via"] + [self._via]
        own: Headers = [
            ("Host", f"{self._host}:{self._port}"),
            ("X-Forwarded-For", ", ".join(forwarded_for)),
            ("X-Forwarded-Proto", scheme),
            ("X-Forwarded-Host", host),
            ("Via", ", ".join(via)),
        ]
        if framing.chunked:
            own.append(("Transfer-Encoding", "chunked"))
        elif framing.length is not None:
            own.append(("Content-Length", str(framing.length)))
        return kept + own

    def forward(
        self,
        environ: Mapping[str, Any],
        *,
        method: str,
        target: str,
        headers: Headers,
        framing: Framing,
        on_broken_body: Callable[[], None],
    ) -> OriginResponse:
        """Send the request (its body streamed from ``environ``) and return the web app's answer.

        :raises FramingError: the viewer's body is malformed or ends early.
        :raises OriginError: the web app is down, stops answering, or answers garbage.
        """
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            try:
                connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    connection.putheader(name, value)
                connection.endheaders()
            except OSError as exc:
                raise self._failure("could not connect", exc) from None
            try:
                self._send_body(connection, environ, framing)
            except OSError as exc:
                # The web app stopped reading (it may have answered early, e.g. 413): read on.
                logger.info("web app stopped reading the request body: %r", exc)
            try:
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise self._failure("did not answer", exc) from None
        except BaseException:
            connection.close()
            raise
        return OriginResponse(response, connection, self._chunk_size, on_broken_body)

    def _send_body(
        self, connection: http.client.HTTPConnection, environ: Mapping[str, Any], framing: Framing
    ) -> None:
        for piece in body_chunks(environ, framing, self._chunk_size):
            if framing.chunked:
                connection.send(b"%x\r\n%b\r\n" % (len(piece), piece))
            else:
                connection.send(piece)
        if framing.chunked:
            connection.send(b"0\r\n\r\n")

    def _failure(self, what: str, exc: BaseException) -> OriginError:
        if isinstance(exc, TimeoutError | socket.timeout):
            return OriginError(f"web app {self.url} timed out ({what})", status=504)
        return OriginError(f"web app {self.url} {what}: {exc!r}")
