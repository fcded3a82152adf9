"""AWS Elemental MediaConvert: probing a source and the CreateJob request built from the ladder.

:func:`source_from_probe` reads a MediaConvert ``Probe`` answer into a
:class:`SourceInfo` (refusing a file with no video stream, or one MediaConvert
cannot read, with a clear reason). :func:`create_job_request` turns a source
and :data:`app.ladder.DEFAULT_LADDER` (the definition the local ffmpeg
transcoder reads) into one ``CreateJob`` request: a CMAF group with HLS
manifests (``videos/<id>/hls/master.m3u8``), a progressive MP4
(``videos/<id>/<rung>.mp4``) and a poster frame capture. :class:`MediaConvertJobs`
sends both calls through a MediaConvert client it is given. The settings and
the reasons behind them are in docs/mediaconvert.md.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.catalog import hls_folder, video_folder
from app.errors import DependencyUnavailableError
from app.ladder import (
    DEFAULT_LADDER,
    Ladder,
    PlannedRendition,
    UnsupportedSourceError,
    keyframe_interval_frames,
    level_name,
    plan,
    progressive_rendition,
)

MASTER_NAME = "master"
"""The CMAF group's destination file name: MediaConvert writes ``master.m3u8`` from it."""
POSTER_NAME = "poster"
"""The frame capture's file name base: MediaConvert writes ``poster.0000001.jpg`` and so on."""
STATUS_UPDATE_INTERVAL = "SECONDS_10"
"""How often a running job reports its progress on EventBridge (STATUS_UPDATE events)."""
MIN_OUTPUT_DIMENSION = 32
"""MediaConvert's smallest output width or height (``VideoDescription.Width`` minimum)."""
POSTER_QUALITY = 80
USER_METADATA_VIDEO = "video_id"
USER_METADATA_ATTEMPT = "attempt"
_AUDIO_SELECTOR = "Audio Selector 1"
_PROFILES = {"baseline": "BASELINE", "main": "MAIN", "high": "HIGH"}


class SourceRejectedError(ValueError):
    """The uploaded file cannot become a video; ``reason`` says why, for the admin."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnreadableSourceError(SourceRejectedError):
    """MediaConvert cannot read the file: damaged, truncated or not a media file."""


class NoVideoStreamError(SourceRejectedError):
    """The file has no video stream (audio only, or not a video)."""


class UnsupportedSourceSizeError(SourceRejectedError):
    """The picture size or frame rate cannot be encoded by the ladder."""


@dataclass(frozen=True)
class SourceInfo:
    """What a probe found: the display size, frame rate and duration; and whether audio exists."""

    width: int
    height: int
    frame_rate: Fraction
    duration_seconds: float
    has_audio: bool


@dataclass(frozen=True)
class JobConfig:
    """Where a job runs: the role MediaConvert assumes, and its queue (None: the Default one)."""

    role_arn: str
    queue_arn: str | None = None
    status_update_interval: str = STATUS_UPDATE_INTERVAL


@dataclass(frozen=True)
class JobTarget:
    """One transcode: a source object in ``bucket`` becoming ``video_id``'s renditions."""

    bucket: str
    source_key: str
    video_id: str
    attempt: int

    @property
    def source_url(self) -> str:
        return s3_url(self.bucket, self.source_key)


def s3_url(bucket: str, key: str) -> str:
    """``s3://bucket/key``: how MediaConvert names inputs and destinations."""
    return f"s3://{bucket}/{key}"


def hls_master_key(video_id: str) -> str:
    """``videos/<id>/hls/master.m3u8``: where the CMAF group's HLS master playlist lands."""
    return f"{hls_folder(video_id)}{MASTER_NAME}.m3u8"


def mp4_key(video_id: str, rendition: PlannedRendition) -> str:
    """``videos/<id>/<rung>.mp4``: the progressive fallback, named like the local transcoder's."""
    return f"{video_folder(video_id)}{rendition.name}.mp4"


def poster_capture_prefix(video_id: str) -> str:
    """``videos/<id>/poster``: the frame capture's key prefix (``.0000001.jpg`` follows)."""
    return f"{video_folder(video_id)}{POSTER_NAME}"


# --------------------------------------------------------------------------- probing


def _display_size(video: Mapping[str, Any]) -> tuple[int, int]:
    """The upright, square-pixel size: rotation swaps the sides, a wide SAR widens the width."""
    width, height = int(video.get("Width") or 0), int(video.get("Height") or 0)
    sar = video.get("SampleAspectRatio") or {}
    num, den = int(sar.get("Numerator") or 1), int(sar.get("Denominator") or 1)
    if num > 0 and den > 0 and num != den:
        width = round(width * num / den)
    if int(video.get("Rotation") or 0) % 180 == 90:
        width, height = height, width
    return width, height


def source_from_probe(response: Mapping[str, Any]) -> SourceInfo:
    """The first video track (and whether an audio track exists) of a ``Probe`` answer.

    :raises UnreadableSourceError: no result, no tracks or no duration.
    :raises NoVideoStreamError: the file has tracks but none is video.
    """
    results = response.get("ProbeResults") or []
    container = (results[0].get("Container") or {}) if results else {}
    tracks = container.get("Tracks") or []
    if not tracks:
        raise UnreadableSourceError("MediaConvert cannot read it (damaged, truncated or not media)")
    videos = [t for t in tracks if t.get("TrackType") == "video"]
    if not videos:
        raise NoVideoStreamError("it has no video stream")
    video = videos[0]
    properties = video.get("VideoProperties") or {}
    width, height = _display_size(properties)
    rate = properties.get("FrameRate") or {}
    num, den = int(rate.get("Numerator") or 0), int(rate.get("Denominator") or 0)
    frame_rate = Fraction(num, den) if num > 0 and den > 0 else Fraction(0)
    duration = float(container.get("Duration") or video.get("Duration") or 0)
    if not math.isfinite(duration) or duration <= 0:
        raise UnreadableSourceError("it has no duration (damaged or truncated)")
    return SourceInfo(
        width=width,
        height=height,
        frame_rate=frame_rate,
        duration_seconds=duration,
        has_audio=any(t.get("TrackType") == "audio" for t in tracks),
    )


def plan_for(source: SourceInfo, ladder: Ladder = DEFAULT_LADDER) -> tuple[PlannedRendition, ...]:
    """The ladder's renditions for ``source``, as :func:`app.ladder.plan` chooses them.

    :raises UnsupportedSourceSizeError: the ladder or MediaConvert cannot encode the size.
    """
    try:
        planned = plan(ladder, source.width, source.height, source.frame_rate)
    except UnsupportedSourceError as exc:
        raise UnsupportedSourceSizeError(str(exc)) from exc
    small = [r.name for r in planned if min(r.width, r.height) < MIN_OUTPUT_DIMENSION]
    if small:
        raise UnsupportedSourceSizeError(
            f"a {source.width}x{source.height} picture is too small: MediaConvert encodes "
            f"at least {MIN_OUTPUT_DIMENSION}x{MIN_OUTPUT_DIMENSION} pixels"
        )
    return planned


# --------------------------------------------------------------------------- the job


def _codec_level(level: int) -> str:
    return "LEVEL_" + level_name(level).replace(".", "_").removesuffix("_0")


def _h264(rendition: PlannedRendition, ladder: Ladder) -> dict[str, Any]:
    """One rung as MediaConvert H.264 settings: the same rates, GOP and level as ffmpeg's."""
    rung, rate = rendition.rung, rendition.frame_rate
    return {
        "Codec": "H_264",
        "H264Settings": {
            "CodecProfile": _PROFILES[rung.profile],
            "CodecLevel": _codec_level(rendition.level),
            "RateControlMode": "VBR",
            "Bitrate": rung.average_kbps * 1000,
            "MaxBitrate": rung.peak_kbps * 1000,
            "HrdBufferSize": rung.buffer_kbits * 1000,
            "FramerateControl": "SPECIFIED",
            "FramerateNumerator": rate.numerator,
            "FramerateDenominator": rate.denominator,
            "FramerateConversionAlgorithm": "DUPLICATE_DROP",
            # Closed GOPs of the same length on every rung, no scene-cut I-frames:
            # all rungs cut segments on the same frames (docs/hls-renditions.md#hls-2).
            "GopSize": keyframe_interval_frames(ladder, rate),
            "GopSizeUnits": "FRAMES",
            "GopClosedCadence": 1,
            "MinIInterval": 0,
            "SceneChangeDetect": "DISABLED",
            "InterlaceMode": "PROGRESSIVE",
            "ParControl": "SPECIFIED",
            "ParNumerator": 1,
            "ParDenominator": 1,
            "QualityTuningLevel": "SINGLE_PASS_HQ",
        },
    }


def _video(rendition: PlannedRendition, ladder: Ladder) -> dict[str, Any]:
    return {
        "Width": rendition.width,
        "Height": rendition.height,
        # plan() kept the aspect ratio; stretching to the even size adds no bars.
        "ScalingBehavior": "STRETCH_TO_OUTPUT",
        "CodecSettings": _h264(rendition, ladder),
    }


def _audio(ladder: Ladder) -> dict[str, Any]:
    audio = ladder.audio
    modes = {1: "CODING_MODE_1_0", 2: "CODING_MODE_2_0", 6: "CODING_MODE_5_1"}
    return {
        "AudioSourceName": _AUDIO_SELECTOR,
        "CodecSettings": {
            "Codec": "AAC",
            "AacSettings": {
                "CodecProfile": "LC",
                "CodingMode": modes[audio.channels],
                "RateControlMode": "CBR",
                "Bitrate": audio.bitrate_kbps * 1000,
                "SampleRate": audio.sample_rate,
            },
        },
    }


def _cmaf_group(
    target: JobTarget,
    planned: tuple[PlannedRendition, ...],
    ladder: Ladder,
    has_audio: bool,
) -> dict[str, Any]:
    audio_group = ladder.audio.group_id
    outputs: list[dict[str, Any]] = []
    # The middle rung first, as the local transcoder writes it: players start with it.
    start = progressive_rendition(planned)
    for rendition in [start, *(r for r in planned if r is not start)]:
        container: dict[str, Any] = {"Container": "CMFC"}
        if has_audio:
            container["CmfcSettings"] = {"AudioRenditionSets": audio_group}
        outputs.append(
            {
                "NameModifier": f"_{rendition.name}",
                "ContainerSettings": container,
                "VideoDescription": _video(rendition, ladder),
            }
        )
    if has_audio:
        outputs.append(
            {
                "NameModifier": f"_{ladder.audio.name}",
                "ContainerSettings": {
                    "Container": "CMFC",
                    "CmfcSettings": {
                        "AudioGroupId": audio_group,
                        "AudioTrackType": "ALTERNATE_AUDIO_AUTO_SELECT_DEFAULT",
                    },
                },
                "AudioDescriptions": [_audio(ladder)],
            }
        )
    return {
        "Name": "HLS (CMAF)",
        "OutputGroupSettings": {
            "Type": "CMAF_GROUP_SETTINGS",
            "CmafGroupSettings": {
                "Destination": s3_url(target.bucket, hls_folder(target.video_id) + MASTER_NAME),
                "SegmentControl": "SEGMENTED_FILES",
                "SegmentLength": ladder.segment_seconds,
                "SegmentLengthControl": "GOP_MULTIPLE",
                "FragmentLength": ladder.keyframe_seconds,
                "WriteHlsManifest": "ENABLED",
                "WriteDashManifest": "DISABLED",
                "ManifestDurationFormat": "FLOATING_POINT",
                "StreamInfResolution": "INCLUDE",
                "CodecSpecification": "RFC_6381",
                "ClientCache": "ENABLED",
                "ManifestCompression": "NONE",
                "TargetDurationCompatibilityMode": "SPEC_COMPLIANT",
            },
        },
        "Outputs": outputs,
    }


def _mp4_group(
    target: JobTarget, rendition: PlannedRendition, ladder: Ladder, has_audio: bool
) -> dict[str, Any]:
    output: dict[str, Any] = {
        "ContainerSettings": {
            "Container": "MP4",
            # The moov box first, like ffmpeg's +faststart: playback starts before the end.
            "Mp4Settings": {"MoovPlacement": "PROGRESSIVE_DOWNLOAD"},
        },
        "VideoDescription": _video(rendition, ladder),
    }
    if has_audio:
        output["AudioDescriptions"] = [_audio(ladder)]
    destination = mp4_key(target.video_id, rendition).removesuffix(".mp4")
    return {
        "Name": "MP4 fallback",
        "OutputGroupSettings": {
            "Type": "FILE_GROUP_SETTINGS",
            "FileGroupSettings": {"Destination": s3_url(target.bucket, destination)},
        },
        "Outputs": [output],
    }


def poster_time(duration_seconds: float) -> float:
    """When the poster is taken: a tenth into the video, at most 10 s (as the local transcoder)."""
    return min(duration_seconds / 10, 10.0)


def _poster_group(
    target: JobTarget, top: PlannedRendition, duration_seconds: float
) -> dict[str, Any]:
    # Captures start at the first frame; two at one per `tenths` tenths of a second put the
    # second (the last, which the COMPLETE event names) at poster_time().
    tenths = round(poster_time(duration_seconds) * 10)
    capture: dict[str, Any] = {"Quality": POSTER_QUALITY}
    if tenths >= 1:
        capture.update(FramerateNumerator=10, FramerateDenominator=tenths, MaxCaptures=2)
    else:
        capture.update(FramerateNumerator=1, FramerateDenominator=1, MaxCaptures=1)
    return {
        "Name": "Poster",
        "OutputGroupSettings": {
            "Type": "FILE_GROUP_SETTINGS",
            "FileGroupSettings": {
                "Destination": s3_url(target.bucket, poster_capture_prefix(target.video_id))
            },
        },
        "Outputs": [
            {
                "ContainerSettings": {"Container": "RAW"},
                "VideoDescription": {
                    "Width": top.width,
                    "Height": top.height,
                    "ScalingBehavior": "STRETCH_TO_OUTPUT",
                    "CodecSettings": {"Codec": "FRAME_CAPTURE", "FrameCaptureSettings": capture},
                },
            }
        ],
    }


def client_request_token(target: JobTarget) -> str:
    """The same token for the same attempt: MediaConvert answers a quick resend with the
    first job instead of starting a second one."""
    text = f"{target.video_id}\n{target.attempt}\n{target.bucket}\n{target.source_key}"
    return hashlib.sha256(text.encode()).hexdigest()[:64]


def create_job_request(
    config: JobConfig,
    target: JobTarget,
    source: SourceInfo,
    *,
    ladder: Ladder = DEFAULT_LADDER,
) -> dict[str, Any]:
    """The ``CreateJob`` request (keyword arguments of ``client.create_job``).

    :raises UnsupportedSourceSizeError: the ladder cannot encode the source's size.
    """
    planned = plan_for(source, ladder)
    job_input: dict[str, Any] = {
        "FileInput": target.source_url,
        "TimecodeSource": "ZEROBASED",
        # Upright like the local transcoder's ffmpeg: rotation metadata is applied.
        "VideoSelector": {"Rotate": "AUTO"},
    }
    if source.has_audio:
        job_input["AudioSelectors"] = {_AUDIO_SELECTOR: {"DefaultSelection": "DEFAULT"}}
    settings = {
        "TimecodeConfig": {"Source": "ZEROBASED"},
        "Inputs": [job_input],
        "OutputGroups": [
            _cmaf_group(target, planned, ladder, source.has_audio),
            _mp4_group(target, progressive_rendition(planned), ladder, source.has_audio),
            _poster_group(target, planned[0], source.duration_seconds),
        ],
    }
    request: dict[str, Any] = {
        "Role": config.role_arn,
        "Settings": settings,
        "UserMetadata": {
            USER_METADATA_VIDEO: target.video_id,
            USER_METADATA_ATTEMPT: str(target.attempt),
        },
        "StatusUpdateInterval": config.status_update_interval,
        "ClientRequestToken": client_request_token(target),
    }
    if config.queue_arn:
        request["Queue"] = config.queue_arn
    return request


# --------------------------------------------------------------------------- the client


_REJECTING_PROBE = frozenset({"UnprocessableEntityException", "BadRequestException"})
"""Probe errors that are the file's fault (malformed or unreadable), not MediaConvert's."""


class MediaConvertJobs:
    """Probes sources and starts jobs through a MediaConvert ``client`` it is given."""

    def __init__(self, client: Any, config: JobConfig, *, ladder: Ladder = DEFAULT_LADDER) -> None:
        self._client = client
        self.config = config
        self.ladder = ladder

    def probe(self, bucket: str, key: str) -> SourceInfo:
        """What the source is, read by MediaConvert itself.

        :raises SourceRejectedError: the file is not a usable video (a clear reason).
        :raises DependencyUnavailableError: MediaConvert cannot be reached or refused us.
        """
        try:
            response = self._client.probe(InputFiles=[{"FileUrl": s3_url(bucket, key)}])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _REJECTING_PROBE:
                message = exc.response.get("Error", {}).get("Message", "")
                raise UnreadableSourceError(
                    f"MediaConvert cannot read it (damaged, truncated or not media): {message}"
                ) from exc
            raise DependencyUnavailableError(f"MediaConvert Probe failed: {code}") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailableError("MediaConvert cannot be reached") from exc
        return source_from_probe(response)

    def start(self, target: JobTarget, source: SourceInfo) -> str:
        """Submit the job; its id.

        :raises UnsupportedSourceSizeError: the ladder cannot encode the source.
        :raises DependencyUnavailableError: MediaConvert refused or cannot be reached.
        """
        request = create_job_request(self.config, target, source, ladder=self.ladder)
        try:
            response = self._client.create_job(**request)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyUnavailableError(f"MediaConvert CreateJob failed: {exc}") from exc
        return str(response["Job"]["Id"])
