"""The bootstrap's folder upload: every file under its prefix with its media type, idempotently.

A small in-memory bucket stands in for S3: it keeps objects (bytes, type,
metadata) and counts uploads, so a second run that changes nothing is visible.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from app.catalog import hls_folder
from app.local.bootstrap import hls_folder_beside, media_type, upload_folder


@dataclass
class StoredObject:
    data: bytes
    content_type: str
    metadata: dict[str, str]


@dataclass
class FakeBucket:
    objects: dict[str, StoredObject] = field(default_factory=dict)
    uploads: int = 0

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        found = self.objects.get(Key)
        if found is None:
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
        return {
            "ContentLength": len(found.data),
            "ContentType": found.content_type,
            "Metadata": dict(found.metadata),
        }

    def upload_file(self, filename: str, bucket: str, key: str, ExtraArgs: dict[str, Any]) -> None:
        self.uploads += 1
        self.objects[key] = StoredObject(
            Path(filename).read_bytes(), ExtraArgs["ContentType"], dict(ExtraArgs["Metadata"])
        )

    def get_paginator(self, name: str) -> FakeBucket:
        assert name == "list_objects_v2"
        return self

    def paginate(self, *, Bucket: str, Prefix: str) -> Iterator[dict[str, Any]]:
        keys = sorted(key for key in self.objects if key.startswith(Prefix))
        yield {"Contents": [{"Key": key} for key in keys]} if keys else {}

    def delete_objects(self, *, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        for item in Delete["Objects"]:
            self.objects.pop(item["Key"], None)
        return {}


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


LADDER = {
    "master.m3u8": b"#EXTM3U\n",
    "360p/index.m3u8": b'#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n',
    "360p/init.mp4": b"init",
    "360p/seg_00001.m4s": b"s" * 100,
    "audio/seg_00001.m4a": b"a" * 10,
}


def test_every_file_lands_under_the_prefix_with_its_media_type(tmp_path: Path) -> None:
    bucket = FakeBucket()

    keys = upload_folder(bucket, "b", tree(tmp_path / "hls", LADDER), hls_folder("a"))

    assert keys == sorted(f"videos/a/hls/{name}" for name in LADDER)
    types = {key: stored.content_type for key, stored in bucket.objects.items()}
    assert types == {
        "videos/a/hls/master.m3u8": "application/vnd.apple.mpegurl",
        "videos/a/hls/360p/index.m3u8": "application/vnd.apple.mpegurl",
        "videos/a/hls/360p/init.mp4": "video/mp4",
        "videos/a/hls/360p/seg_00001.m4s": "video/iso.segment",
        "videos/a/hls/audio/seg_00001.m4a": "audio/mp4",
    }
    assert bucket.objects["videos/a/hls/360p/seg_00001.m4s"].data == b"s" * 100


def test_a_second_run_uploads_only_what_changed(tmp_path: Path) -> None:
    bucket = FakeBucket()
    folder = tree(tmp_path / "hls", LADDER)
    upload_folder(bucket, "b", folder, "videos/a/hls/")
    assert bucket.uploads == len(LADDER)

    upload_folder(bucket, "b", folder, "videos/a/hls/")
    assert bucket.uploads == len(LADDER)

    (folder / "360p" / "seg_00001.m4s").write_bytes(b"t" * 100)  # same size, new bytes
    upload_folder(bucket, "b", folder, "videos/a/hls/")
    assert bucket.uploads == len(LADDER) + 1
    assert bucket.objects["videos/a/hls/360p/seg_00001.m4s"].data == b"t" * 100


def test_objects_under_the_prefix_without_a_local_file_are_removed(tmp_path: Path) -> None:
    bucket = FakeBucket()
    upload_folder(bucket, "b", tree(tmp_path / "old", {"1080p/seg.m4s": b"x", **LADDER}), "p/")
    upload_folder(bucket, "b", tree(tmp_path / "other", {"keep.m3u8": b"#"}), "q/")

    upload_folder(bucket, "b", tree(tmp_path / "new", LADDER), "p/")

    assert "p/1080p/seg.m4s" not in bucket.objects
    assert sorted(k for k in bucket.objects if k.startswith("p/")) == sorted(
        f"p/{name}" for name in LADDER
    )
    assert "q/keep.m3u8" in bucket.objects, "another prefix is left alone"


def test_a_file_of_unknown_type_stops_the_upload_before_anything_is_sent(tmp_path: Path) -> None:
    bucket = FakeBucket()
    folder = tree(tmp_path / "hls", {**LADDER, "ffmpeg.log": b"log"})

    with pytest.raises(ValueError):
        upload_folder(bucket, "b", folder, "videos/a/hls/")
    assert bucket.objects == {}


@pytest.mark.parametrize("prefix", ["videos/a/hls", ""])
def test_a_prefix_must_be_a_folder(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(ValueError):
        upload_folder(FakeBucket(), "b", tree(tmp_path / "hls", LADDER), prefix)


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        upload_folder(FakeBucket(), "b", tmp_path / "absent", "videos/a/hls/")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.M3U8", "application/vnd.apple.mpegurl"), ("x.ts", "video/mp2t"), ("p.jpg", "image/jpeg")],
)
def test_media_types_follow_the_suffix_in_any_case(name: str, expected: str) -> None:
    assert media_type(Path(name)) == expected


def test_the_hls_folder_beside_an_mp4_counts_only_with_its_master_playlist(tmp_path: Path) -> None:
    mp4 = tmp_path / "clip.mp4"
    assert hls_folder_beside(mp4) is None
    (tmp_path / "hls").mkdir()
    assert hls_folder_beside(mp4) is None
    (tmp_path / "hls" / "master.m3u8").write_bytes(b"#EXTM3U\n")
    assert hls_folder_beside(mp4) == tmp_path / "hls"
