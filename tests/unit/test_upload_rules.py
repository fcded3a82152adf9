"""The rules of browser uploads and posters that need no S3: names, sizes, parts, JPEG bytes."""

from __future__ import annotations

import pytest

from app.browser_uploads import (
    InvalidPartsError,
    InvalidUploadError,
    UploadTooLargeError,
    check_completed_parts,
    check_part_numbers,
    check_size,
    describe_size,
    is_source_key,
    safe_file_name,
)
from app.posters import InvalidPosterError, check_jpeg

GIB = 1024**3


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("clip.mp4", "clip.mp4"),
        ("My Holiday (final).MOV", "My-Holiday-final-.MOV"),
        ("C:\\Users\\me\\video.mp4", "video.mp4"),
        ("../../etc/passwd", "passwd"),
        ("...hidden.mp4", "hidden.mp4"),
        ("a..b.mp4", "a.b.mp4"),
        ("Café déjà vu.mp4", "Cafe-deja-vu.mp4"),
        ("视频.mp4", "mp4"),
        ("", "upload"),
        ("///", "upload"),
    ],
)
def test_file_names_become_safe_key_names(name: str, safe: str) -> None:
    assert safe_file_name(name) == safe
    assert is_source_key(f"uploads/abc/{safe}")


def test_long_names_keep_their_extension() -> None:
    safe = safe_file_name("x" * 300 + ".mp4")
    assert len(safe) == 100 and safe.endswith(".mp4")


@pytest.mark.parametrize(
    "key",
    ["videos/a/x.mp4", "uploads/a/b/c.mp4", "uploads/../x.mp4", "uploads/a/ x.mp4", "uploads/a/"],
)
def test_only_upload_keys_are_source_keys(key: str) -> None:
    assert not is_source_key(key)


def test_the_cap_is_inclusive_one_byte_over_is_refused() -> None:
    assert check_size(20 * GIB, 20 * GIB) == 20 * GIB
    with pytest.raises(UploadTooLargeError) as caught:
        check_size(20 * GIB + 1, 20 * GIB)
    assert caught.value.status == 413 and "20 GiB" in caught.value.friendly


@pytest.mark.parametrize("size", [0, -1, True, 1.5, "10", None])
def test_sizes_must_be_whole_positive_numbers(size: object) -> None:
    with pytest.raises(InvalidUploadError):
        check_size(size, GIB)


def test_sizes_read_as_people_read_them() -> None:
    assert describe_size(20 * GIB) == "20 GiB"
    assert describe_size(int(1.5 * GIB)) == "1.5 GiB"
    assert describe_size(12 * 1024 * 1024) == "12.0 MiB"


def test_part_numbers_are_1_to_10000_distinct_at_most_100_at_once() -> None:
    assert check_part_numbers([1, 10_000]) == [1, 10_000]
    for bad in ([], [0], [10_001], [1, 1], [True], ["1"], list(range(1, 102)), "1"):
        with pytest.raises(InvalidPartsError):
            check_part_numbers(bad)


def test_completed_parts_are_ascending_with_quoted_etags() -> None:
    parts = check_completed_parts(
        [{"PartNumber": 1, "ETag": "abc"}, {"PartNumber": 3, "ETag": '"def"'}]
    )
    assert parts == [{"PartNumber": 1, "ETag": '"abc"'}, {"PartNumber": 3, "ETag": '"def"'}]


@pytest.mark.parametrize(
    "parts",
    [
        [],
        [{"PartNumber": 2, "ETag": "a"}, {"PartNumber": 1, "ETag": "b"}],
        [{"PartNumber": 1, "ETag": "a"}, {"PartNumber": 1, "ETag": "a"}],
        [{"PartNumber": 1, "ETag": 'a"><script>'}],
        [{"PartNumber": 1}],
        ["1"],
        {"PartNumber": 1, "ETag": "a"},
    ],
)
def test_malformed_part_lists_are_refused(parts: object) -> None:
    with pytest.raises(InvalidPartsError):
        check_completed_parts(parts)


def jpeg(width: int, height: int, *, end: bytes = b"\xff\xd9") -> bytes:
    """A minimal JPEG: SOI, an APP0, a baseline frame header, a scan, EOI."""
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = (
        b"\xff\xc0\x00\x11\x08"
        + height.to_bytes(2, "big")
        + width.to_bytes(2, "big")
        + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    )
    sos = b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00" + b"\x12\x34"
    return b"\xff\xd8" + app0 + sof + sos + end


def test_a_jpeg_gives_its_size() -> None:
    image = check_jpeg(jpeg(1280, 720))
    assert (image.width, image.height) == (1280, 720)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "PNG"),
        (b"GIF89a" + b"\x00" * 20, "not a JPEG"),
        (jpeg(640, 360, end=b""), "truncated"),
        (jpeg(8, 8), "sides"),
        (jpeg(9000, 100), "sides"),
        (b"\xff\xd8\xff\xe0\x00\x02\xff\xda\x00\x02\xff\xd9", "no frame header"),
        (b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024), "over"),
    ],
)
def test_anything_but_a_sound_jpeg_is_refused(data: bytes, words: str) -> None:
    with pytest.raises(InvalidPosterError) as caught:
        check_jpeg(data)
    assert words in str(caught.value)
