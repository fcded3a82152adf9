"""CloudFront signed URLs and signed cookies, and the one object-key <-> URL-path encoding.

The signer turns a grant ("this viewer may fetch this object until then") into
what CloudFront checks: a canned or custom policy, signed with the private half
of a key registered in the distribution's trusted key group (ECDSA P-256 with
SHA-256 by default, or RSA-2048 PKCS#1 v1.5 with SHA-1 or SHA-256), encoded in
CloudFront's own base64 (E-1, E-2; rule ids here are those of
docs/cloudfront-signing.md). It builds on botocore's
``CloudFrontSigner`` (policy JSON and URL layout) and adds what botocore lacks:
``Hash-Algorithm=SHA256`` and signed cookies. ``object_key_to_path`` /
``path_to_object_key`` are the single tested encoding of S3 object keys into URL
paths, shared by the signer and the local CloudFront edge.

Time: CloudFront judges ``DateLessThan`` / ``DateGreaterThan`` with its own
clock at request time. The signer never adds a ``DateGreaterThan`` on its own
(a viewer-side or edge-side clock running behind would then refuse fresh URLs);
callers compute ``expires_at`` as *now + ttl* with the signer's clock (see
:meth:`UrlSigner.url_for_key`). When a caller does ask for a start time, the
policy's ``DateGreaterThan`` is ``starts_at - skew_seconds`` so that an edge
whose clock runs slightly behind ours still accepts the URL.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias
from urllib.parse import quote, unquote_to_bytes, urlsplit

from botocore.signers import CloudFrontSigner

from app.errors import BadRequestError, ConfigurationError

# cryptography is imported by the functions that handle keys, not here: it is
# most of what the playback handler's cold import would add to boto3's.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

HashAlgorithm = Literal["SHA1", "SHA256"]
PrivateKey: TypeAlias = "rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey"
PublicKey: TypeAlias = "rsa.RSAPublicKey | ec.EllipticCurvePublicKey"

RSA_KEY_BITS = 2048
MAX_EPOCH = 2**31 - 1  # U-5: a 32-bit integer, no later than 2038-01-19
MAX_KEY_BYTES = 1024  # S3's limit on an object key, in UTF-8 bytes
# Query parameters that carry the signature; a signed URL must not already have them.
SIGNING_PARAMS = ("Expires", "Policy", "Signature", "Key-Pair-Id", "Hash-Algorithm")

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Unicode category Cc (C0, DEL, C1) and lone surrogates (which UTF-8 cannot encode).
_CONTROL_OR_SURROGATE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CANONICAL_PATH = re.compile(r"(?:/(?:[A-Za-z0-9\-._~]|%[0-9A-F]{2})*)+")
# Characters RFC 3986 allows in a URL (unreserved, reserved, and "%" of escapes).
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
# A policy Resource may also hold "\?", the escaped query separator (CP-3).
_RESOURCE_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%\\]*")
_B64_CF = re.compile(r"(?:[A-Za-z0-9\-~]{4})*(?:[A-Za-z0-9\-~]{2}__|[A-Za-z0-9\-~]{3}_)?")
_TO_CF = bytes.maketrans(b"+=/", b"-_~")
_FROM_CF = bytes.maketrans(b"-_~", b"+=/")


class InvalidObjectKeyError(BadRequestError, ValueError):
    """An object key (or URL path) that must not be served or signed."""


class UnsupportedSigningKeyError(ConfigurationError):
    """A key that is not RSA-2048 or ECDSA P-256, or not a PEM key at all."""


# --- object key <-> URL path -------------------------------------------------


def _check_key(key: str) -> None:
    if not key:
        raise InvalidObjectKeyError("object key is empty")
    if key.startswith("/"):
        raise InvalidObjectKeyError("object key starts with '/'")
    if "//" in key:
        raise InvalidObjectKeyError("object key contains an empty segment ('//')")
    if any(segment in (".", "..") for segment in key.split("/")):
        raise InvalidObjectKeyError("object key contains a '.' or '..' segment")
    if _CONTROL_OR_SURROGATE.search(key):
        raise InvalidObjectKeyError("object key contains a control character or a lone surrogate")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidObjectKeyError(f"object key is longer than {MAX_KEY_BYTES} bytes")


def object_key_to_path(key: str) -> str:
    """The URL path (with its leading ``/``) that names S3 object ``key``.

    Every character outside RFC 3986 *unreserved* and ``/`` is percent-encoded
    as UTF-8 with upper-case hex, so spaces, ``+``, ``%``, ``?``, ``#``, ``*``
    and non-ASCII all travel safely and the result is the canonical form that
    :func:`path_to_object_key` accepts.

    :raises InvalidObjectKeyError: for an empty key, a leading ``/``, ``//``,
        a ``.`` or ``..`` segment, control characters, or more than 1024 bytes.
    """
    _check_key(key)
    return "/" + quote(key, safe="/", encoding="utf-8", errors="strict")


def path_to_object_key(path: str) -> str:
    """The S3 object key named by URL ``path``; the inverse of :func:`object_key_to_path`.

    Only the canonical encoding is accepted (``object_key_to_path(key) == path``):
    a path with lower-case or needless escapes (``%41``, ``%2e``), raw
    characters that should have been escaped, invalid UTF-8, or a key the
    encoder would refuse is rejected, so two different paths never name the
    same object and ``..`` can never be smuggled past a prefix check.

    :raises InvalidObjectKeyError: for any path that is not canonical.
    """
    if not _CANONICAL_PATH.fullmatch(path):
        raise InvalidObjectKeyError("URL path is not a canonical percent-encoded path")
    try:
        key = unquote_to_bytes(path[1:]).decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidObjectKeyError("URL path does not decode to UTF-8") from exc
    if object_key_to_path(key) != path:
        raise InvalidObjectKeyError("URL path is not in canonical form")
    return key


# --- CloudFront base64, policies ---------------------------------------------


def cloudfront_b64encode(data: bytes) -> str:
    """Standard base64 without line breaks, then ``+``→``-``, ``=``→``_``, ``/``→``~`` (E-1)."""
    return base64.b64encode(data).translate(_TO_CF).decode("ascii")


def cloudfront_b64decode(text: str) -> bytes:
    """Decode CloudFront base64 strictly: the alphabet, padding and length must be exact.

    Standard base64 (``+``, ``/``, ``=``), RFC 4648 base64url (``_`` for ``/``,
    no padding) and unpadded input are refused, never treated as equivalent.

    :raises ValueError: when ``text`` is not canonical CloudFront base64.
    """
    if not _B64_CF.fullmatch(text):
        raise ValueError("not CloudFront base64")
    try:
        data = base64.b64decode(text.encode("ascii").translate(_FROM_CF), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not CloudFront base64") from exc
    if cloudfront_b64encode(data) != text:  # non-zero trailing bits: not canonical
        raise ValueError("not canonical CloudFront base64")
    return data


def _epoch(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer epoch (seconds), got {value!r}")
    if not 0 < value <= MAX_EPOCH:
        raise ValueError(f"{what} must be within 1..{MAX_EPOCH}, got {value}")
    return value


def _as_datetime(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def normalize_source_ip(ip: str) -> str:
    """The ``AWS:SourceIp`` value for ``ip``: an IPv4 CIDR; a bare address becomes ``/32``.

    :raises ValueError: for IPv6 (CloudFront does not support it, CP-4), a
        malformed address, or a network with host bits set.
    """
    text = ip if "/" in ip else f"{ip}/32"
    network = ipaddress.ip_network(text, strict=True)
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError("CloudFront IpAddress conditions support IPv4 only")
    return str(network)


def _check_url(url: str, what: str) -> None:
    if not _URL_CHARS.fullmatch(url):
        raise ValueError(f"{what} must be an ASCII URL with non-URL characters percent-encoded")


def _check_resource(resource: str) -> None:
    if not _RESOURCE_CHARS.fullmatch(resource):
        raise ValueError("resource must be an ASCII URL pattern with non-URL characters encoded")
    scheme, sep, rest = resource.partition("://")
    if not sep or scheme not in ("http", "https", "*"):
        raise ValueError("resource must start with http://, https:// or *://")
    if not rest.split("/", 1)[0].strip("*?"):
        # A wildcard-only domain grants every distribution's files (CP-2).
        raise ValueError("resource must name a domain, not only wildcards")


def _is_pattern(resource: str) -> bool:
    # "*" and "\?" only mean something in a custom policy; a plain "?" is taken as
    # the query separator of an exact URL (canned policy).
    return "*" in resource or "\\?" in resource


# --- keys ----------------------------------------------------------------------


def _check_key_type(key: object) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size != RSA_KEY_BITS:
            raise UnsupportedSigningKeyError(
                f"CloudFront RSA keys must be {RSA_KEY_BITS}-bit, got {key.key_size}-bit"
            )
    elif isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise UnsupportedSigningKeyError(
                f"CloudFront ECDSA keys must be P-256 (secp256r1), got {key.curve.name}"
            )
    else:
        raise UnsupportedSigningKeyError(
            f"CloudFront keys are RSA-2048 or ECDSA P-256, got {type(key).__name__}"
        )


def load_private_key(pem: bytes | str) -> PrivateKey:
    """Parse an unencrypted PEM private key (PKCS#8 or traditional); do it once per process.

    :raises UnsupportedSigningKeyError: (a :class:`ConfigurationError`) when the
        PEM does not parse or is not RSA-2048 / ECDSA P-256.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    data = pem.encode("ascii", errors="replace") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise UnsupportedSigningKeyError(f"not an unencrypted PEM private key: {exc}") from None
    _check_key_type(key)
    return key  # type: ignore[return-value]  # narrowed by _check_key_type


def load_public_key(pem: bytes | str) -> PublicKey:
    """Parse a PEM public key (SubjectPublicKeyInfo), as registered in a CloudFront key group.

    :raises UnsupportedSigningKeyError: when the PEM does not parse or is not
        RSA-2048 / ECDSA P-256.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    data = pem.encode("ascii", errors="replace") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise UnsupportedSigningKeyError(f"not a PEM public key: {exc}") from None
    _check_key_type(key)
    return key  # type: ignore[return-value]  # narrowed by _check_key_type


def public_key_pem(key: PrivateKey | PublicKey) -> bytes:
    """The SubjectPublicKeyInfo PEM of ``key`` (what CloudFront's CreatePublicKey takes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    public = (
        key.public_key() if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) else key
    )
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --- the signer ----------------------------------------------------------------


@dataclass(frozen=True)
class SignedUrl:
    """A signed URL and the epoch second after which CloudFront refuses it."""

    url: str
    expires_at: int


@dataclass(frozen=True)
class SignedCookies:
    """Signed cookies (name → value) and the epoch second after which they are refused."""

    cookies: dict[str, str]
    expires_at: int


@dataclass(frozen=True)
class SignedFolder:
    """A folder grant: cookies for every object under ``resource``, plus a URL for its entry.

    The URL and the cookies expire at the same second, ``expires_at``;
    ``lifetime_seconds`` is how long that is from the signing moment.
    """

    url: str
    cookies: dict[str, str]
    resource: str
    expires_at: int
    lifetime_seconds: int


class UrlSigner:
    """Signs CloudFront URLs and cookies with one key of the distribution's trusted key group.

    Build one per process (the private key is parsed once by
    :func:`load_private_key` and handed in) and reuse it: signing does no
    parsing and builds no key objects per call.

    ``hash_algorithm``: ECDSA keys always sign with SHA-256 (``None`` or
    ``"SHA256"``); RSA keys use SHA-1 unless ``"SHA256"`` is asked for. With
    SHA-256 the URL carries ``Hash-Algorithm=SHA256`` and the cookies
    ``CloudFront-Hash-Algorithm=SHA256``.

    ``base_url`` (``https://dxxx.cloudfront.net``, no trailing slash needed) is
    only used by :meth:`url_for_key`, :meth:`cookies_for_prefix` and :meth:`sign_folder`.
    ``clock`` gives *now* for those three; ``skew_seconds`` is subtracted from an
    explicit ``starts_at`` (module docstring).
    """

    def __init__(
        self,
        key_pair_id: str,
        private_key: PrivateKey,
        *,
        base_url: str | None = None,
        hash_algorithm: HashAlgorithm | None = None,
        clock: Callable[[], float] = time.time,
        skew_seconds: int = 30,
    ) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if not key_pair_id or not re.fullmatch(r"[A-Za-z0-9]+", key_pair_id):
            raise ConfigurationError(f"invalid CloudFront key pair id {key_pair_id!r}")
        if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise UnsupportedSigningKeyError("UrlSigner needs an RSA or ECDSA private key")
        _check_key_type(private_key)
        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            if hash_algorithm not in (None, "SHA256"):
                raise ConfigurationError("ECDSA keys sign with SHA256 in vidgate")
            hash_algorithm = "SHA256"
        elif hash_algorithm is None:
            hash_algorithm = "SHA1"
        if hash_algorithm not in ("SHA1", "SHA256"):
            raise ConfigurationError(
                f"hash_algorithm must be SHA1 or SHA256, got {hash_algorithm!r}"
            )
        if skew_seconds < 0:
            raise ConfigurationError("skew_seconds must not be negative")
        if base_url is not None:
            parts = urlsplit(base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                raise ConfigurationError(
                    f"base_url must be http(s)://host[/prefix], got {base_url!r}"
                )
            _check_url(base_url, "base_url")
            base_url = base_url.rstrip("/")
        self.key_pair_id = key_pair_id
        self.hash_algorithm: HashAlgorithm = hash_algorithm
        self.base_url = base_url
        self._clock = clock
        self._skew = skew_seconds
        self._sign = self._make_sign(private_key, hash_algorithm)
        self._botocore = CloudFrontSigner(key_pair_id, self._sign)

    @staticmethod
    def _make_sign(key: PrivateKey, algorithm: HashAlgorithm) -> Callable[[bytes], bytes]:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding

        digest: hashes.HashAlgorithm = hashes.SHA256() if algorithm == "SHA256" else hashes.SHA1()  # noqa: S303 - CloudFront's default
        if isinstance(key, ec.EllipticCurvePrivateKey):
            scheme = ec.ECDSA(digest)  # DER-encoded (r, s), as openssl -sign produces (E-3)

            def sign_ec(message: bytes) -> bytes:
                return key.sign(message, scheme)

            return sign_ec
        pkcs1 = padding.PKCS1v15()

        def sign_rsa(message: bytes) -> bytes:
            return key.sign(message, pkcs1, digest)

        return sign_rsa

    # -- policies

    def _policy(self, resource: str, expires_at: int, starts_at: int | None, ip: str | None) -> str:
        return str(
            self._botocore.build_policy(
                resource,
                _as_datetime(expires_at),
                date_greater_than=(
                    _as_datetime(max(1, starts_at - self._skew)) if starts_at is not None else None
                ),
                ip_address=normalize_source_ip(ip) if ip is not None else None,
            )
        )

    def _check_times(self, expires_at: int, starts_at: int | None) -> None:
        _epoch(expires_at, "expires_at")
        if starts_at is not None and _epoch(starts_at, "starts_at") >= expires_at:
            raise ValueError("starts_at must be before expires_at")

    # -- URLs

    def sign_url(
        self,
        url: str,
        *,
        expires_at: int,
        starts_at: int | None = None,
        ip: str | None = None,
        resource: str | None = None,
    ) -> str:
        """Sign ``url`` (absolute, already percent-encoded; own query parameters allowed).

        A canned policy (``Expires=``) is used unless a ``resource`` other than
        ``url`` (e.g. with ``*`` / ``?`` wildcards), ``starts_at`` or ``ip`` is
        given; then a custom policy (``Policy=``). Signature parameters follow
        the URL's own parameters (U-3).

        :raises ValueError: for a malformed URL or resource, a URL that already
            carries signing parameters, out-of-range times or a non-IPv4 ``ip``.
        """
        _check_url(url, "url")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url must be absolute http(s), got {url!r}")
        if parts.fragment or "#" in url or url.endswith(("?", "&")):
            raise ValueError("url must not have a fragment or an empty trailing query")
        names = (
            {piece.split("=", 1)[0] for piece in parts.query.split("&")} if parts.query else set()
        )
        if names.intersection(SIGNING_PARAMS):
            raise ValueError(f"url already carries one of {', '.join(SIGNING_PARAMS)}")
        self._check_times(expires_at, starts_at)
        if resource is not None:
            _check_resource(resource)
        if (resource is None or resource == url) and starts_at is None and ip is None:
            signed = self._botocore.generate_presigned_url(
                url, date_less_than=_as_datetime(expires_at)
            )
        else:
            policy = self._policy(
                resource if resource is not None else url, expires_at, starts_at, ip
            )
            signed = self._botocore.generate_presigned_url(url, policy=policy)
        if self.hash_algorithm == "SHA256":
            signed += "&Hash-Algorithm=SHA256"
        return str(signed)

    def url_for_key(self, object_key: str, ttl_seconds: int, *, ip: str | None = None) -> SignedUrl:
        """A canned-policy URL for object ``object_key`` under ``base_url``, valid ``ttl_seconds``.

        ``expires_at`` is the signer clock's *now* + ``ttl_seconds``; the edge
        judges it with its own clock (CloudFront does the same).

        :raises InvalidObjectKeyError: for a key :func:`object_key_to_path` refuses.
        """
        if self.base_url is None:
            raise ConfigurationError("UrlSigner needs base_url to sign object keys")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        expires_at = int(self._clock()) + ttl_seconds
        url = self.base_url + object_key_to_path(object_key)
        return SignedUrl(self.sign_url(url, expires_at=expires_at, ip=ip), expires_at)

    # -- cookies

    def sign_cookies(
        self,
        resource: str,
        *,
        expires_at: int,
        starts_at: int | None = None,
        ip: str | None = None,
    ) -> dict[str, str]:
        """The ``CloudFront-*`` cookie values granting ``resource`` (K-1).

        A canned policy (``CloudFront-Expires``) when ``resource`` is one exact
        URL and neither ``starts_at`` nor ``ip`` is given; otherwise a custom
        policy (``CloudFront-Policy``). Setting the cookies (``Domain``,
        ``Path``, ``Secure``, ``HttpOnly``, no ``Expires``; K-2) is the web
        layer's job.

        :raises ValueError: for a malformed resource, out-of-range times or a
            non-IPv4 ``ip``.
        """
        _check_resource(resource)
        self._check_times(expires_at, starts_at)
        cookies: dict[str, str] = {}
        if not _is_pattern(resource) and starts_at is None and ip is None:
            policy = self._botocore.build_policy(resource, _as_datetime(expires_at))
            cookies["CloudFront-Expires"] = str(expires_at)
        else:
            policy = self._policy(resource, expires_at, starts_at, ip)
            cookies["CloudFront-Policy"] = cloudfront_b64encode(policy.encode("utf-8"))
        cookies["CloudFront-Signature"] = cloudfront_b64encode(self._sign(policy.encode("utf-8")))
        cookies["CloudFront-Key-Pair-Id"] = self.key_pair_id
        if self.hash_algorithm == "SHA256":
            cookies["CloudFront-Hash-Algorithm"] = "SHA256"
        return cookies

    def cookies_for_prefix(
        self, prefix: str, ttl_seconds: int, *, ip: str | None = None
    ) -> SignedCookies:
        """Custom-policy cookies for every object under key ``prefix`` (e.g. an HLS folder).

        The resource is ``base_url + object_key_to_path(prefix) + "*"``; the
        encoder escapes ``*`` and ``?`` in keys, so the only wildcard is ours.

        :raises InvalidObjectKeyError: for a prefix :func:`object_key_to_path` refuses.
        """
        if self.base_url is None:
            raise ConfigurationError("UrlSigner needs base_url to sign object keys")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        expires_at = int(self._clock()) + ttl_seconds
        resource = self.base_url + object_key_to_path(prefix) + "*"
        return SignedCookies(self.sign_cookies(resource, expires_at=expires_at, ip=ip), expires_at)

    def sign_folder(self, folder: str, entry_key: str, ttl_seconds: int) -> SignedFolder:
        """Cookies for key folder ``folder``, and the plain URL of ``entry_key`` inside it.

        For an HLS rendition set: the URL names the master playlist and carries no
        signature of its own (one signature per grant; the URL stays the same from
        one renewal to the next, so a player never reloads it): the cookies let
        the player fetch it and every playlist and segment it names.
        The cookies' custom policy has ``Resource`` = ``base_url`` + the encoded
        folder + ``*``. ``folder`` must end with ``/``: ``*`` also matches ``/``,
        so ``videos/a*`` would open ``videos/ab/…`` too (CP-3,
        docs/streaming.md#c-2). Both expire ``ttl_seconds`` after one reading
        of the clock.

        :raises InvalidObjectKeyError: ``folder`` or ``entry_key`` is not a valid
            key, ``folder`` does not end with ``/``, or ``entry_key`` is not inside it.
        """
        if self.base_url is None:
            raise ConfigurationError("UrlSigner needs base_url to sign object keys")
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be a positive whole number")
        if not folder.endswith("/"):
            raise InvalidObjectKeyError("a folder grant's folder must end with '/'")
        if not entry_key.startswith(folder) or len(entry_key) == len(folder):
            raise InvalidObjectKeyError("the entry object is not inside the folder")
        folder_path = object_key_to_path(folder)
        entry_url = self.base_url + object_key_to_path(entry_key)
        expires_at = int(self._clock()) + ttl_seconds
        resource = self.base_url + folder_path + "*"
        return SignedFolder(
            url=entry_url,
            cookies=self.sign_cookies(resource, expires_at=expires_at),
            resource=resource,
            expires_at=expires_at,
            lifetime_seconds=ttl_seconds,
        )
