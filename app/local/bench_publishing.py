"""``make bench`` publishing section: local transcode speed of the demo ladder.

A synthetic clip shaped like the first demo video (1280x720, 25 fps, with audio)
goes through :func:`app.ops.transcode.transcode` with the default ladder, as the
local transcoder worker runs it. Printed: wall time, speed as "x real time" (clip seconds
per wall second: above 1 means faster than playback) and ffmpeg's CPU seconds.
Figures are printed, never asserted.
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from pathlib import Path

from app.ladder import DEFAULT_LADDER, plan
from app.local.media import DEMO_VIDEOS
from app.ops.media import encode_clip, probe
from app.ops.transcode import DEFAULT_PRESET, transcode

DEFAULT_SECONDS = 10
DEFAULT_RUNS = 2


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_publishing(seconds: int = DEFAULT_SECONDS, runs: int = DEFAULT_RUNS) -> list[str]:
    """Transcode a generated clip ``runs`` times; the report's lines."""
    demo = DEMO_VIDEOS[0]
    with tempfile.TemporaryDirectory(prefix="vidgate-bench-publishing-") as tmp:
        clip = Path(tmp) / "clip.mp4"
        encode_clip(
            clip, seconds=seconds, pattern=demo.pattern, tone_hz=demo.tone_hz, size=demo.size
        )
        info = probe(clip)
        rungs = plan(DEFAULT_LADDER, info.width, info.height, info.frame_rate)
        walls: list[float] = []
        cpus: list[float] = []
        for run in range(runs):
            cpu_before = _children_cpu()
            started = time.perf_counter()
            transcode(clip, Path(tmp) / f"out-{run}", preset=DEFAULT_PRESET)
            walls.append(time.perf_counter() - started)
            cpus.append(_children_cpu() - cpu_before)
    wall = statistics.median(walls)
    return [
        "",
        f"publishing: local transcode of a {seconds} s {demo.size} clip into "
        f"{len(rungs)} renditions ({', '.join(r.name for r in rungs)}) + MP4 + poster, "
        f"preset {DEFAULT_PRESET}, {runs} runs",
        f"  wall {wall:.1f} s (median), {info.duration / wall:.2f}x real time, "
        f"ffmpeg CPU {statistics.median(cpus):.1f} s",
    ]
