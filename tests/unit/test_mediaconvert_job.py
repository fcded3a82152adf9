"""The MediaConvert CreateJob request: valid for botocore's model, snapshot-tested, and the
same ladder as the local ffmpeg transcoder (both read app.ladder)."""

from __future__ import annotations

import json
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from botocore.stub import Stubber

from app.errors import DependencyUnavailableError
from app.ladder import DEFAULT_LADDER, keyframe_interval_frames, plan, progressive_rendition
from app.mediaconvert import (
    JobConfig,
    JobTarget,
    MediaConvertJobs,
    NoVideoStreamError,
    SourceInfo,
    UnreadableSourceError,
    UnsupportedSourceSizeError,
    client_request_token,
    create_job_request,
    hls_master_key,
    poster_time,
    source_from_probe,
)
from app.ops.media import MediaInfo
from app.ops.transcode import HLS_DIR, encode_arguments

SNAPSHOTS = Path(__file__).parent / "snapshots"
ROLE = "arn:aws:iam::111122223333:role/vidgate-mediaconvert"
QUEUE = "arn:aws:mediaconvert:us-east-1:111122223333:queues/vidgate-test"
CONFIG = JobConfig(role_arn=ROLE, queue_arn=QUEUE)
TARGET = JobTarget(bucket="vidgate-media", source_key="uploads/u-1/My Clip.mov", video_id="clip-1",
                   attempt=1)  # fmt: skip
HD = SourceInfo(width=1920, height=1080, frame_rate=Fraction(30000, 1001), duration_seconds=125.5,
                has_audio=True)  # fmt: skip


def _client() -> Any:
    return boto3.client(
        "mediaconvert",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _submit(request: dict[str, Any]) -> str:
    """Send ``request`` through a real client whose answer is stubbed: botocore validates it."""
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("create_job", {"Job": {"Id": "1700000000000-abc123", "Role": ROLE,
                                                 "Settings": {}}}, request)  # fmt: skip
        job_id = MediaConvertJobs(client, CONFIG).start(TARGET, HD)
        stub.assert_no_pending_responses()
    return job_id


# --------------------------------------------------------------------------- the model


def test_the_request_passes_botocores_mediaconvert_model() -> None:
    assert _submit(create_job_request(CONFIG, TARGET, HD)) == "1700000000000-abc123"


@pytest.mark.parametrize(
    "source",
    [
        SourceInfo(640, 360, Fraction(25), 4.0, has_audio=False),  # no audio: no audio output
        SourceInfo(1080, 1920, Fraction(60), 30.0, has_audio=True),  # portrait, 60 fps
        SourceInfo(320, 180, Fraction(24), 0.04, has_audio=True),  # a single frame
        SourceInfo(3840, 2160, Fraction(120), 600.0, has_audio=True),  # 4K at 120 fps
    ],
)
def test_every_kind_of_source_gives_a_valid_request(source: SourceInfo) -> None:
    request = create_job_request(CONFIG, TARGET, source)
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("create_job", {"Job": {"Id": "j", "Role": ROLE, "Settings": {}}}, request)
        client.create_job(**request)


def _enum_violations(shape: Any, value: Any, path: str = "") -> list[str]:
    """Values outside their enum (botocore's validator checks names, types and ranges only)."""
    if shape.type_name == "structure":
        return [v for name, item in value.items()
                for v in _enum_violations(shape.members[name], item, f"{path}.{name}")]  # fmt: skip
    if shape.type_name == "list":
        return [v for i, item in enumerate(value)
                for v in _enum_violations(shape.member, item, f"{path}[{i}]")]  # fmt: skip
    if shape.type_name == "map":
        return [v for key, item in value.items()
                for v in _enum_violations(shape.value, item, f"{path}[{key}]")]  # fmt: skip
    enum = getattr(shape, "enum", None)  # only string shapes have one
    if enum and value not in enum:
        return [f"{path}: {value!r} not in {enum}"]
    return []


def _create_job_shape() -> Any:
    return _client().meta.service_model.operation_model("CreateJob").input_shape


@pytest.mark.parametrize(
    "source",
    [HD, SourceInfo(640, 360, Fraction(25), 4.0, has_audio=False),
     SourceInfo(3840, 2160, Fraction(50), 0.04, has_audio=True)],
)  # fmt: skip
def test_every_enumerated_setting_is_one_the_model_lists(source: SourceInfo) -> None:
    assert _enum_violations(_create_job_shape(), create_job_request(CONFIG, TARGET, source)) == []


def test_the_enum_check_finds_a_wrong_value() -> None:
    request = create_job_request(CONFIG, TARGET, HD)
    cmaf = request["Settings"]["OutputGroups"][0]["OutputGroupSettings"]["CmafGroupSettings"]
    cmaf["WriteHlsManifest"] = "YES"
    (problem,) = _enum_violations(_create_job_shape(), request)
    assert "WriteHlsManifest" in problem


@pytest.mark.parametrize(
    ("where", "name", "value"),
    [("cmaf", "SegmentLenght", 4), ("video", "Width", 16), ("video", "Height", "720")],
)
def test_the_validation_is_live_a_wrong_name_range_or_type_is_refused(
    where: str, name: str, value: Any
) -> None:
    request = create_job_request(CONFIG, TARGET, HD)
    cmaf_group = request["Settings"]["OutputGroups"][0]
    if where == "cmaf":
        cmaf_group["OutputGroupSettings"]["CmafGroupSettings"][name] = value
    else:
        cmaf_group["Outputs"][0]["VideoDescription"][name] = value
    client = _client()
    with Stubber(client) as stub, pytest.raises(ParamValidationError):
        stub.add_response("create_job", {"Job": {"Id": "j", "Role": ROLE, "Settings": {}}})
        client.create_job(**request)


def test_without_a_queue_the_job_goes_to_the_default_queue() -> None:
    request = create_job_request(JobConfig(ROLE), TARGET, HD)
    assert "Queue" not in request
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("create_job", {"Job": {"Id": "j", "Role": ROLE, "Settings": {}}}, request)
        client.create_job(**request)


def test_a_refused_create_job_is_a_dependency_failure() -> None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error("create_job", "ForbiddenException", http_status_code=403)
        with pytest.raises(DependencyUnavailableError):
            MediaConvertJobs(client, CONFIG).start(TARGET, HD)


# --------------------------------------------------------------------------- snapshot


def test_the_request_matches_its_snapshot() -> None:
    request = create_job_request(CONFIG, TARGET, HD)
    path = SNAPSHOTS / "mediaconvert_create_job.json"
    text = json.dumps(request, indent=2, sort_keys=True) + "\n"
    if os.environ.get("VIDGATE_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
    assert text == path.read_text(), "run with VIDGATE_UPDATE_SNAPSHOTS=1 after a deliberate change"


# --------------------------------------------------------------------------- layout


def _groups(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["OutputGroupSettings"]["Type"] + ":" + g["Name"]: g
            for g in request["Settings"]["OutputGroups"]}  # fmt: skip


def test_outputs_land_where_the_catalog_and_the_cookies_expect_them() -> None:
    request = create_job_request(CONFIG, TARGET, HD)
    groups = request["Settings"]["OutputGroups"]
    cmaf = groups[0]["OutputGroupSettings"]["CmafGroupSettings"]
    assert cmaf["Destination"] + ".m3u8" == "s3://vidgate-media/" + hls_master_key("clip-1")
    assert hls_master_key("clip-1") == "videos/clip-1/hls/master.m3u8"
    mp4 = groups[1]["OutputGroupSettings"]["FileGroupSettings"]["Destination"]
    name = progressive_rendition(plan(DEFAULT_LADDER, 1920, 1080, HD.frame_rate)).name
    assert mp4 == f"s3://vidgate-media/videos/clip-1/{name}"
    poster = groups[2]["OutputGroupSettings"]["FileGroupSettings"]["Destination"]
    assert poster == "s3://vidgate-media/videos/clip-1/poster"
    assert (
        request["Settings"]["Inputs"][0]["FileInput"]
        == "s3://vidgate-media/uploads/u-1/My Clip.mov"
    )


def test_user_metadata_names_the_video_and_the_attempt() -> None:
    request = create_job_request(CONFIG, JobTarget("b", "uploads/u/f.mp4", "v-9", 3), HD)
    assert request["UserMetadata"] == {"video_id": "v-9", "attempt": "3"}
    assert request["StatusUpdateInterval"] == "SECONDS_10"


def test_the_request_token_is_stable_per_attempt_and_differs_between_attempts() -> None:
    again = JobTarget(TARGET.bucket, TARGET.source_key, TARGET.video_id, TARGET.attempt)
    retry = JobTarget(TARGET.bucket, TARGET.source_key, TARGET.video_id, TARGET.attempt + 1)
    assert client_request_token(TARGET) == client_request_token(again)
    assert client_request_token(TARGET) != client_request_token(retry)
    assert len(client_request_token(TARGET)) <= 64


def test_a_source_without_audio_gets_no_audio_selector_and_no_audio_output() -> None:
    request = create_job_request(CONFIG, TARGET, SourceInfo(1280, 720, Fraction(25), 10, False))
    assert "AudioSelectors" not in request["Settings"]["Inputs"][0]
    text = json.dumps(request)
    assert "AudioDescriptions" not in text and "AudioRenditionSets" not in text


def test_the_poster_is_the_last_of_two_captures_at_a_tenth_of_the_video() -> None:
    request = create_job_request(CONFIG, TARGET, HD)
    capture = request["Settings"]["OutputGroups"][2]["Outputs"][0]["VideoDescription"][
        "CodecSettings"]["FrameCaptureSettings"]  # fmt: skip
    assert capture["MaxCaptures"] == 2
    second = capture["FramerateDenominator"] / capture["FramerateNumerator"]
    assert second == pytest.approx(poster_time(HD.duration_seconds)) == 10.0


def test_a_source_too_small_for_mediaconvert_is_refused_with_a_reason() -> None:
    with pytest.raises(UnsupportedSourceSizeError, match="32x32"):
        create_job_request(CONFIG, TARGET, SourceInfo(40, 20, Fraction(25), 5, True))


# --------------------------------------------------------------------------- same ladder as ffmpeg


def _ffmpeg_ladder(source: SourceInfo) -> dict[str, Any]:
    info = MediaInfo(
        duration=source.duration_seconds,
        has_video=True,
        has_audio=source.has_audio,
        width=source.width,
        height=source.height,
        frame_rate=source.frame_rate,
    )
    planned = plan(DEFAULT_LADDER, source.width, source.height, source.frame_rate)
    args = encode_arguments(Path("/src.mp4"), info, planned, DEFAULT_LADDER, preset="veryfast")

    def value(flag: str) -> str:
        return args[args.index(flag) + 1]

    sizes = re.findall(r"scale=(\d+):(\d+)", value("-filter_complex"))
    rungs = {}
    for i, r in enumerate(planned):
        rungs[r.name] = {
            "size": tuple(int(n) for n in sizes[i]),
            "bitrate": int(value(f"-b:v:{i}").removesuffix("k")) * 1000,
            "max_bitrate": int(value(f"-maxrate:v:{i}").removesuffix("k")) * 1000,
            "buffer": int(value(f"-bufsize:v:{i}").removesuffix("k")) * 1000,
            "profile": value(f"-profile:v:{i}").upper(),
            "level": "LEVEL_" + value(f"-level:v:{i}").replace(".", "_").removesuffix("_0"),
        }
    return {
        "rungs": rungs,
        "segment_seconds": int(value("-hls_time")),
        "gop_frames": int(value("-g")),
        "audio": (int(value("-b:a").removesuffix("k")) * 1000, int(value("-ar")), int(value("-ac")))
        if source.has_audio else None,
        "mp4": progressive_rendition(planned).name,
        "segment_template": value("-hls_segment_filename").startswith(f"{HLS_DIR}/"),
    }  # fmt: skip


def _mediaconvert_ladder(source: SourceInfo) -> dict[str, Any]:
    request = create_job_request(CONFIG, TARGET, source)
    cmaf, mp4, _poster = request["Settings"]["OutputGroups"]
    settings = cmaf["OutputGroupSettings"]["CmafGroupSettings"]
    rungs, gops, audio = {}, set(), None
    for output in cmaf["Outputs"]:
        name = output["NameModifier"].removeprefix("_")
        if "VideoDescription" not in output:
            aac = output["AudioDescriptions"][0]["CodecSettings"]["AacSettings"]
            audio = (aac["Bitrate"], aac["SampleRate"], int(aac["CodingMode"][-3]))
            continue
        video = output["VideoDescription"]
        h264 = video["CodecSettings"]["H264Settings"]
        gops.add(h264["GopSize"])
        rungs[name] = {
            "size": (video["Width"], video["Height"]),
            "bitrate": h264["Bitrate"],
            "max_bitrate": h264["MaxBitrate"],
            "buffer": h264["HrdBufferSize"],
            "profile": h264["CodecProfile"],
            "level": h264["CodecLevel"],
        }
    (gop,) = gops
    return {
        "rungs": rungs,
        "segment_seconds": settings["SegmentLength"],
        "gop_frames": gop,
        "audio": audio,
        "mp4": mp4["OutputGroupSettings"]["FileGroupSettings"]["Destination"].rsplit("/", 1)[1],
        "segment_template": settings["Destination"].endswith("/hls/master"),
    }


@pytest.mark.parametrize(
    "source",
    [
        HD,
        SourceInfo(1280, 720, Fraction(25), 60.0, has_audio=True),
        SourceInfo(854, 480, Fraction(24000, 1001), 60.0, has_audio=False),
        SourceInfo(720, 1280, Fraction(30), 60.0, has_audio=True),  # portrait
        SourceInfo(3840, 2160, Fraction(120), 60.0, has_audio=True),  # halved to 60 fps
    ],
)
def test_mediaconvert_and_ffmpeg_encode_the_same_ladder(source: SourceInfo) -> None:
    ffmpeg, mediaconvert = _ffmpeg_ladder(source), _mediaconvert_ladder(source)
    assert mediaconvert == ffmpeg
    assert list(mediaconvert["rungs"])  # never an empty comparison


def test_both_ladders_use_the_key_frame_interval_of_the_one_definition() -> None:
    rate = plan(DEFAULT_LADDER, 1920, 1080, HD.frame_rate)[0].frame_rate
    assert _mediaconvert_ladder(HD)["gop_frames"] == keyframe_interval_frames(DEFAULT_LADDER, rate)
    assert _mediaconvert_ladder(HD)["segment_seconds"] == DEFAULT_LADDER.segment_seconds


# --------------------------------------------------------------------------- probing


def _probe(*tracks: dict[str, Any], duration: float = 12.5) -> dict[str, Any]:
    return {"ProbeResults": [{"Container": {"Format": "mp4", "Duration": duration,
                                            "Tracks": list(tracks)}}]}  # fmt: skip


VIDEO_PROPERTIES: dict[str, Any] = {
    "Width": 1920,
    "Height": 1080,
    "FrameRate": {"Numerator": 30000, "Denominator": 1001},
}
VIDEO: dict[str, Any] = {
    "TrackType": "video",
    "Codec": "AVC",
    "Index": 1,
    "VideoProperties": VIDEO_PROPERTIES,
}
AUDIO = {"TrackType": "audio", "Codec": "AAC", "Index": 2,
         "AudioProperties": {"Channels": 2, "SampleRate": 48000}}  # fmt: skip


def test_a_probe_gives_size_rate_duration_and_audio() -> None:
    source = source_from_probe(_probe(VIDEO, AUDIO))
    assert source == SourceInfo(1920, 1080, Fraction(30000, 1001), 12.5, has_audio=True)


def test_a_rotated_source_is_planned_upright() -> None:
    rotated = {**VIDEO, "VideoProperties": {**VIDEO_PROPERTIES, "Rotation": 90}}
    source = source_from_probe(_probe(rotated))
    assert (source.width, source.height, source.has_audio) == (1080, 1920, False)


def test_a_file_without_a_video_stream_fails_with_a_clear_reason() -> None:
    with pytest.raises(NoVideoStreamError, match="no video stream"):
        source_from_probe(_probe(AUDIO))


@pytest.mark.parametrize("response", [{}, {"ProbeResults": []}, _probe()])
def test_a_file_probe_reads_nothing_from_is_unreadable(response: dict[str, Any]) -> None:
    with pytest.raises(UnreadableSourceError):
        source_from_probe(response)


def test_a_source_without_duration_is_unreadable() -> None:
    with pytest.raises(UnreadableSourceError, match="duration"):
        source_from_probe(_probe(VIDEO, duration=0))


def test_probe_goes_through_a_validated_client_and_maps_a_malformed_file() -> None:
    client = _client()
    with Stubber(client) as stub:
        expected = {"InputFiles": [{"FileUrl": "s3://b/uploads/u/clip.mp4"}]}
        stub.add_response("probe", _probe(VIDEO, AUDIO), expected)
        stub.add_client_error("probe", "UnprocessableEntityException", "corrupt", 422,
                              expected_params=expected)  # fmt: skip
        stub.add_client_error("probe", "TooManyRequestsException", "slow down", 429,
                              expected_params=expected)  # fmt: skip
        jobs = MediaConvertJobs(client, CONFIG)
        assert jobs.probe("b", "uploads/u/clip.mp4").width == 1920
        with pytest.raises(UnreadableSourceError, match="corrupt"):
            jobs.probe("b", "uploads/u/clip.mp4")
        with pytest.raises(DependencyUnavailableError):
            jobs.probe("b", "uploads/u/clip.mp4")
    assert not isinstance(UnreadableSourceError("x"), ClientError)
