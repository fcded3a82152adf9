"""The streaming part of ``make bench``: HLS against the progressive MP4, on the product's pages.

It starts ``vidgate dev`` as a child process (its own loopback ports and a
temporary state folder; demo media copied from ``.cache/test-media`` when
encoded before), so the stack's edge and web app do not share this process's
interpreter with the clients that measure them. On the longest demo video:

1. **time to first frame** in headless Chromium (Playwright, the e2e tests'
   flags): alice's real watch page, its Play pressed the moment the player says
   ``ready``; from navigation start to the first frame presented after Play
   (``requestVideoFrameCallback``). HLS is the player's choice in Chromium
   (hls.js); the MP4 is its own fallback, chosen by hiding Media Source
   Extensions and native HLS from the page (the player then asks for
   ``{"format": "mp4"}``). Runs interleaved, fresh browser context each (empty
   cache); medians and the ratio HLS/MP4 (goal <= 1.2);
2. **bytes fetched** for ``/videos/*`` (response bodies, from the DevTools
   protocol's ``Network.dataReceived``) from navigation until 10 s after Play,
   on a link throttled by ``Network.emulateNetworkConditions``; both formats
   and the ratio MP4/HLS;
3. **segment throughput** of the top rung's init segment and segments: through
   the edge (the front door, with the grant's CloudFront cookies) against a
   direct GET of the same objects from the emulator's S3 (presigned URLs, the
   same HTTP client), rounds interleaved; MB/s each and the ratio edge/direct
   (goal >= 0.8). Bytes must match object for object.

Numbers are printed, never asserted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import boto3
import requests
from botocore.config import Config

from app.local.emulator import EMULATOR_ENV
from app.local.loadtest import sign_in
from app.local.ports import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

ROOT = Path(__file__).resolve().parents[2]
MEDIA_CACHE = ROOT / ".cache" / "test-media"
USERNAME = "alice"
CHROMIUM = Path(os.environ.get("VIDGATE_CHROMIUM") or "/usr/bin/chromium")
# The e2e tests' flags (tests/e2e/helpers.py): same browser, same autoplay policy.
LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
)
DEFAULT_RUNS = 5
DEFAULT_THROTTLE_BPS = 1_500_000
THROTTLE_LATENCY_MS = 40
WINDOW_SECONDS = 10.0
THROUGHPUT_ROUNDS = 3
FRAME_TIMEOUT_MS = 60_000
MB = 1_000_000

# Before any page script: press Play as soon as the player is ready, and mark
# (performance.now(), ms since navigation start) Play and the first frame presented after it.
FIRST_FRAME_JS = """(() => {
  const marks = {};
  window.__vidgateBench = marks;
  document.addEventListener('DOMContentLoaded', () => {
    const root = document.getElementById('player');
    const video = document.getElementById('player-video');
    if (!root || !video) { return; }
    const press = () => {
      if (root.dataset.state !== 'ready' || 'play' in marks) { return; }
      marks.play = performance.now();
      video.requestVideoFrameCallback((now) => { marks.frame = now; });
      document.getElementById('player-play').click();
    };
    new MutationObserver(press).observe(root, {attributes: true, attributeFilter: ['data-state']});
    press();
  });
})();"""

# A browser without Media Source Extensions or native HLS: the player falls back to the MP4.
NO_HLS_JS = """(() => {
  for (const name of ['MediaSource', 'ManagedMediaSource', 'WebKitMediaSource']) {
    Object.defineProperty(window, name, { value: undefined, configurable: true });
  }
  const canPlay = HTMLMediaElement.prototype.canPlayType;
  HTMLMediaElement.prototype.canPlayType = function (type) {
    return /mpegurl/i.test(type) ? '' : canPlay.call(this, type);
  };
})();"""

PLAYER_JS = """() => {
  const root = document.getElementById('player');
  const video = document.getElementById('player-video');
  const ranges = video.buffered;
  const ahead = ranges.length ? ranges.end(ranges.length - 1) : 0;
  return {format: root.dataset.format, engine: root.dataset.engine, state: root.dataset.state,
          level: Number(root.dataset.level), currentTime: video.currentTime,
          height: video.videoHeight, bufferedTo: ahead};
}"""

FORMATS = ("hls", "mp4")


class StreamBenchError(RuntimeError):
    """The streaming bench could not run (no browser, the stack or the player failed)."""


# --------------------------------------------------------------------------- pure helpers


@dataclass(frozen=True)
class Variant:
    """One ``#EXT-X-STREAM-INF`` of a master playlist."""

    bandwidth: int
    uri: str


def master_variants(text: str) -> list[Variant]:
    """The variant streams of an HLS master playlist, in playlist order."""
    variants: list[Variant] = []
    pending: int | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-STREAM-INF:"):
            found = re.search(r"(?:^|[:,])BANDWIDTH=(\d+)", line)
            if found is None:
                raise ValueError(f"a variant without BANDWIDTH: {line}")
            pending = int(found.group(1))
        elif line and not line.startswith("#") and pending is not None:
            variants.append(Variant(pending, line))
            pending = None
    if not variants:
        raise ValueError("the master playlist lists no variant stream")
    return variants


def media_uris(text: str) -> list[str]:
    """A media playlist's init segment (``#EXT-X-MAP``) and segments, as written (relative)."""
    uris: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-MAP:"):
            found = re.search(r'URI="([^"]+)"', line)
            if found is None:
                raise ValueError(f"an EXT-X-MAP without URI: {line}")
            uris.append(found.group(1))
        elif line and not line.startswith("#"):
            uris.append(line)
    return uris


@dataclass
class ByteCounter:
    """Response body bytes of the media requests (``/videos/*``) seen in a time window.

    Fed with the DevTools protocol's ``Network.requestWillBeSent`` and
    ``Network.dataReceived`` events; ``clock`` stamps each chunk as it arrives.
    """

    prefix: str = "/videos/"
    clock: Callable[[], float] = time.monotonic
    urls: dict[str, str] = field(default_factory=dict)
    chunks: list[tuple[float, int]] = field(default_factory=list)

    def on_request(self, event: dict[str, Any]) -> None:
        self.urls[event["requestId"]] = event["request"]["url"]

    def on_data(self, event: dict[str, Any]) -> None:
        url = self.urls.get(event["requestId"], "")
        if urlsplit(url).path.startswith(self.prefix):
            self.chunks.append((self.clock(), int(event["dataLength"])))

    def total(self, until: float) -> int:
        return sum(size for at, size in self.chunks if at <= until)

    @property
    def requests(self) -> int:
        return sum(1 for url in self.urls.values() if urlsplit(url).path.startswith(self.prefix))


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


def throughput_mb_s(sizes: Iterable[int], seconds: float) -> float:
    return sum(sizes) / MB / seconds if seconds > 0 else float("inf")


# --------------------------------------------------------------------------- the stack


class DevProcess:
    """``python -m app.ops dev`` as a child process on free loopback ports, until ``stop()``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.log_path = state_dir / "dev.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.document: dict[str, Any] = {}

    def start(self, timeout: float = 300) -> DevProcess:
        media = self.state_dir / "media"
        if MEDIA_CACHE.exists() and not media.exists():  # demo media encoded once, reused
            shutil.copytree(MEDIA_CACHE, media)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIDGATE_"))}
        env["PYTHONUNBUFFERED"] = "1"
        ports = [str(free_port()) for _ in range(3)]
        argv = [sys.executable, "-m", "app.ops", "dev", "--port", ports[0]]
        argv += ["--aws-port", ports[1], "--edge-port", ports[2]]
        argv += ["--state-dir", str(self.state_dir)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, our own stack
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while "ready" not in self.log_path.read_text(errors="replace").splitlines():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise StreamBenchError(f"vidgate dev did not become ready:\n{tail}")
            time.sleep(0.3)
        if not MEDIA_CACHE.exists():
            shutil.copytree(media, MEDIA_CACHE)
        self.document = json.loads((self.state_dir / "dev-stack.json").read_text())
        return self

    @property
    def site_url(self) -> str:
        return str(self.document["site_url"])

    def password(self, username: str) -> str:
        return str(next(u for u in self.document["users"] if u["username"] == username)["password"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def longest_demo(media_dir: Path) -> tuple[str, float]:
    """The demo video with the longest duration (the media manifest the bootstrap writes)."""
    manifest = json.loads((media_dir / "manifest.json").read_text())
    video_id = max(manifest, key=lambda key: float(manifest[key]["duration"]))
    return str(video_id), float(manifest[video_id]["duration"])


# --------------------------------------------------------------------------- the browser


def _signed_in_state(browser: Browser, stack: DevProcess) -> Any:
    """alice signed in through the real form once; fresh contexts start from these cookies."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(stack.site_url + "/auth/sign-in?next=/", wait_until="load")
        page.fill("#identifier", USERNAME)
        page.fill("#password", stack.password(USERNAME))
        with page.expect_navigation(wait_until="load"):
            page.click("main form[action$='/auth/sign-in'] button[type=submit]")
        if urlsplit(page.url).path.startswith("/auth/sign-in"):
            raise StreamBenchError(f"{USERNAME} could not sign in")
        return context.storage_state()
    finally:
        context.close()


def _context(browser: Browser, state: Any, fmt: str) -> BrowserContext:
    context = browser.new_context(storage_state=state, viewport={"width": 1280, "height": 800})
    if fmt == "mp4":
        context.add_init_script(NO_HLS_JS)
    context.add_init_script(FIRST_FRAME_JS)
    return context


def _check_format(snapshot: dict[str, Any], fmt: str) -> None:
    if snapshot["format"] != fmt:
        raise StreamBenchError(f"asked the player for {fmt}, it played {snapshot}")


def first_frame_ms(browser: Browser, state: Any, url: str, fmt: str) -> tuple[float, float]:
    """(navigation start → first frame after Play, Play → that frame), in ms, one fresh context."""
    context = _context(browser, state, fmt)
    try:
        page = context.new_page()
        page.goto(url, wait_until="commit")
        page.wait_for_function(
            "() => window.__vidgateBench && 'frame' in window.__vidgateBench",
            timeout=FRAME_TIMEOUT_MS,
        )
        marks = page.evaluate("() => window.__vidgateBench")
        _check_format(page.evaluate(PLAYER_JS), fmt)
        return float(marks["frame"]), float(marks["frame"]) - float(marks["play"])
    finally:
        context.close()


def throttled_bytes(
    browser: Browser, state: Any, url: str, fmt: str, bits_per_second: int
) -> tuple[int, int, dict[str, Any]]:
    """Media body bytes from navigation to ``WINDOW_SECONDS`` after Play on a throttled link.

    Returns (bytes, media requests, the player's state at the window's end).
    """
    context = _context(browser, state, fmt)
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        counter = ByteCounter()
        cdp.on("Network.requestWillBeSent", counter.on_request)
        cdp.on("Network.dataReceived", counter.on_data)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": THROTTLE_LATENCY_MS,
                "downloadThroughput": bits_per_second / 8,
                "uploadThroughput": bits_per_second / 8,
            },
        )
        page.goto(url, wait_until="commit")
        page.wait_for_function(
            "() => window.__vidgateBench && 'play' in window.__vidgateBench",
            timeout=FRAME_TIMEOUT_MS,
            polling=50,
        )
        window_end = time.monotonic() + WINDOW_SECONDS
        page.wait_for_timeout(WINDOW_SECONDS * 1000)
        snapshot = page.evaluate(PLAYER_JS)
        page.wait_for_timeout(300)  # let chunks that arrived in the window be dispatched
        _check_format(snapshot, fmt)
        return counter.total(window_end), counter.requests, snapshot
    finally:
        context.close()


def browser_figures(stack: DevProcess, video_id: str, runs: int, throttle_bps: int) -> list[str]:
    if not CHROMIUM.is_file():
        raise StreamBenchError(f"no browser: {CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise StreamBenchError(f"the playwright package cannot be imported ({exc})") from exc
    url = f"{stack.site_url}/watch/{video_id}"
    lines: list[str] = []
    with sync_playwright() as manager:
        browser = manager.chromium.launch(
            executable_path=str(CHROMIUM), args=list(LAUNCH_ARGS), headless=True
        )
        try:
            state = _signed_in_state(browser, stack)
            for fmt in FORMATS:  # warm-up: the stack's first grant, the OS file cache
                first_frame_ms(browser, state, url, fmt)
            total: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
            after_play: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
            for _ in range(runs):
                for fmt in FORMATS:
                    whole, play = first_frame_ms(browser, state, url, fmt)
                    total[fmt].append(whole)
                    after_play[fmt].append(play)
            med = {fmt: statistics.median(total[fmt]) for fmt in FORMATS}
            med_play = {fmt: statistics.median(after_play[fmt]) for fmt in FORMATS}
            lines.append(
                f"time to first frame, {video_id}, Chromium headless, alice's watch page, "
                f"median of {runs} fresh contexts each (navigation start -> first frame after Play)"
            )
            for fmt in FORMATS:
                samples = ", ".join(f"{s:.0f}" for s in sorted(total[fmt]))
                lines.append(
                    f"  {fmt:<4}{med[fmt]:>8.0f} ms  (Play -> frame {med_play[fmt]:.0f} ms; "
                    f"runs {samples})"
                )
            lines.append(
                f"  ratio HLS/MP4: {ratio(med['hls'], med['mp4']):.2f}  (goal <= 1.2); "
                f"Play -> frame {ratio(med_play['hls'], med_play['mp4']):.2f}"
            )
            got = {fmt: throttled_bytes(browser, state, url, fmt, throttle_bps) for fmt in FORMATS}
            lines.append(
                f"media bytes fetched, navigation -> {WINDOW_SECONDS:.0f} s after Play, "
                f"link throttled to {throttle_bps / 1e6:g} Mbit/s, {THROTTLE_LATENCY_MS} ms latency"
            )
            for fmt in FORMATS:
                size, count, snap = got[fmt]
                where = (
                    f"played to {snap['currentTime']:.1f} s, buffered to "
                    f"{snap['bufferedTo']:.1f} s, {snap['height']}p"
                )
                lines.append(
                    f"  {fmt:<4}{size / MB:>8.2f} MB in {count} requests ({where}, {snap['state']})"
                )
            lines.append(f"  ratio MP4/HLS: {ratio(got['mp4'][0], got['hls'][0]):.1f}x")
        finally:
            browser.close()
    return lines


# --------------------------------------------------------------------------- edge vs S3


def segment_throughput(stack: DevProcess, video_id: str, rounds: int) -> list[str]:
    """The top rung's objects through the edge (grant cookies) vs presigned GETs from S3."""
    site = stack.site_url
    viewer = sign_in(site, USERNAME, stack.password(USERNAME), video_id)
    granted = viewer.session.post(
        f"{site}/watch/{video_id}/grant",
        json={},
        headers={"X-CSRF-Token": viewer.csrf, "Accept": "application/json"},
        timeout=30,
    )
    if granted.status_code != 200 or granted.json().get("format") != "hls":
        raise StreamBenchError(f"no HLS grant for {video_id}: {granted.status_code} {granted.text}")
    master_url = urljoin(site, granted.json()["url"])
    master = viewer.session.get(master_url, timeout=30)
    master.raise_for_status()
    top = max(master_variants(master.text), key=lambda v: v.bandwidth)
    rung_url = urljoin(master_url, top.uri)
    rung = viewer.session.get(rung_url, timeout=30)
    rung.raise_for_status()
    urls = [urljoin(rung_url, uri) for uri in media_uris(rung.text)]
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.document["aws_endpoint"],
        region_name=stack.document["region"],
        aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )
    presigned = [
        s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": stack.document["bucket"], "Key": urlsplit(u).path.lstrip("/")},
            ExpiresIn=3600,
        )
        for u in urls
    ]
    direct = requests.Session()

    def fetch_all(session: requests.Session, targets: list[str]) -> tuple[list[int], float]:
        sizes: list[int] = []
        began = time.perf_counter()
        for target in targets:
            answer = session.get(target, timeout=60)
            if answer.status_code != 200:
                raise StreamBenchError(f"GET {target.split('?')[0]} answered {answer.status_code}")
            sizes.append(len(answer.content))
        return sizes, time.perf_counter() - began

    fetch_all(viewer.session, urls)  # warm-up: connections, the OS file cache
    fetch_all(direct, presigned)
    edge_sizes: list[int] = []
    s3_sizes: list[int] = []
    edge_seconds = s3_seconds = 0.0
    for _ in range(rounds):
        sizes, seconds = fetch_all(viewer.session, urls)
        edge_sizes += sizes
        edge_seconds += seconds
        sizes, seconds = fetch_all(direct, presigned)
        s3_sizes += sizes
        s3_seconds += seconds
    if edge_sizes != s3_sizes:
        raise StreamBenchError("the edge and S3 answered different bytes for the same objects")
    rung_name = top.uri.split("/")[0]
    edge_rate = throughput_mb_s(edge_sizes, edge_seconds)
    s3_rate = throughput_mb_s(s3_sizes, s3_seconds)
    return [
        f"segment throughput, {video_id} {rung_name} (top rung): {len(urls)} objects, "
        f"{sum(edge_sizes) / rounds / MB:.1f} MB, {rounds} rounds interleaved, one connection each",
        f"  edge (front door, grant cookies)   {edge_rate:>8.1f} MB/s",
        f"  emulator S3 (presigned GET)        {s3_rate:>8.1f} MB/s",
        f"  ratio edge/direct: {ratio(edge_rate, s3_rate):.2f}  (goal >= 0.8)",
    ]


def run_streaming(
    runs: int = DEFAULT_RUNS,
    throttle_bps: int = DEFAULT_THROTTLE_BPS,
    *,
    rounds: int = THROUGHPUT_ROUNDS,
    say: Callable[[str], None] = print,
) -> list[str]:
    """Start a stack, measure the three figures of the module docstring, stop it."""
    with tempfile.TemporaryDirectory(prefix="vidgate-stream-") as tmp:
        stack = DevProcess(Path(tmp))
        say("streaming: starting vidgate dev (first run encodes the demo media)...")
        stack.start()
        try:
            video_id, duration = longest_demo(Path(tmp) / "media")
            say(f"streaming: {video_id} ({duration:.0f} s), site {stack.site_url}")
            lines = browser_figures(stack, video_id, runs, throttle_bps)
            lines += segment_throughput(stack, video_id, rounds)
            return lines
        finally:
            stack.stop()
