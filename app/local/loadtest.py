"""The load test of ``make bench``: the playback grant path through a production WSGI server.

It starts a local stack (:class:`~app.local.stack.DevStack`: the AWS emulator,
the bootstrap, the edge) in a temporary state folder, then the web app under
gunicorn as a separate process (``-w 2 --threads 8``) with the stack's
environment, signs ``alice`` in through the web form once per client (each
client is a browser of its own: its own session cookie and CSRF token), and
lets every client POST the watch page's same-origin grant route
(``/watch/<id>/grant`` with ``X-CSRF-Token``, as the player does) in a loop
for a fixed time, at most ``max_requests`` in all. It reports requests,
errors, p50/p99/max latency and requests per second. Loopback only; the
numbers are printed, never asserted (clients and server share the machine).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from app.local.ports import LOOPBACK, free_port, wait_for_port
from app.local.stack import DevOptions, DevStack

ROOT = Path(__file__).resolve().parents[2]
MEDIA_CACHE = ROOT / ".cache" / "test-media"
USERNAME = "alice"
DEFAULT_SECONDS = 30.0
DEFAULT_CLIENTS = 50
DEFAULT_MAX_REQUESTS = 500_000
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 8


class LoadTestError(RuntimeError):
    """The load test could not be set up (the stack, gunicorn or the sign-in failed)."""


@dataclass
class LoadResult:
    """What the clients saw: one latency per answered request, errors by kind."""

    clients: int
    seconds: float
    route: str
    latencies: list[float] = field(default_factory=list)
    """Seconds per answered request."""
    unanswered: int = 0
    """Requests that got no answer (connection error, timeout)."""
    errors: Counter[str] = field(default_factory=Counter)
    """Errors by kind: ``HTTP 503``, ``ConnectionError``..."""

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.unanswered

    def lines(self) -> list[str]:
        """The report, one line per figure (no assertions: load numbers are for reading)."""
        head = (
            f"load: {self.clients} clients for {self.seconds:.1f} s, POST {self.route} "
            f"through gunicorn -w {GUNICORN_WORKERS} --threads {GUNICORN_THREADS} (loopback)"
        )
        lines = [head, f"load: requests {self.requests}, errors {sum(self.errors.values())}"]
        if self.errors:
            kinds = ", ".join(f"{kind} x{count}" for kind, count in self.errors.most_common())
            lines.append(f"load: errors by kind: {kinds}")
        if self.latencies:
            ordered = sorted(self.latencies)
            p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
            lines.append(
                f"load: latency p50 {statistics.median(ordered) * 1000:.1f} ms, "
                f"p99 {p99 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms"
            )
        lines.append(f"load: {self.requests / self.seconds:.0f} requests/s")
        return lines


@dataclass(frozen=True)
class Browser:
    """One signed-in client: its session (cookie) and the CSRF token of its pages."""

    session: requests.Session
    csrf: str


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if found is None:
        raise LoadTestError("the sign-in page has no CSRF field")
    return found.group(1)


def sign_in(base_url: str, username: str, password: str, video_id: str) -> Browser:
    """Sign in through the web form, then read the CSRF token of ``video_id``'s watch page."""
    session = requests.Session()
    page = session.get(f"{base_url}/auth/sign-in", timeout=30)
    page.raise_for_status()
    answer = session.post(
        f"{base_url}/auth/sign-in",
        data={"identifier": username, "password": password, "csrf_token": _form_token(page.text)},
        timeout=30,
        allow_redirects=False,
    )
    if answer.status_code != 302:
        raise LoadTestError(f"sign-in of {username} answered {answer.status_code}")
    watch = session.get(f"{base_url}/watch/{video_id}", timeout=30)
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', watch.text)
    if watch.status_code != 200 or found is None:
        raise LoadTestError(f"the watch page of {video_id} answered {watch.status_code}")
    return Browser(session, found.group(1))


def _premium_video(base_url: str) -> str:
    listing = requests.get(f"{base_url}/api/videos", params={"limit": 100}, timeout=30)
    listing.raise_for_status()
    for item in listing.json()["items"]:
        if item["tier"] == "premium":
            return str(item["id"])
    raise LoadTestError("the catalog has no premium video")


def drive(
    base_url: str,
    browsers: list[Browser],
    video_id: str,
    *,
    seconds: float,
    max_requests: int = DEFAULT_MAX_REQUESTS,
) -> LoadResult:
    """Every browser POSTs the grant route in a loop until ``seconds`` or ``max_requests``."""
    route = f"/watch/{video_id}/grant"
    result = LoadResult(clients=len(browsers), seconds=seconds, route=route)
    lock = threading.Lock()
    budget = [max_requests]
    start = threading.Barrier(len(browsers) + 1)
    deadline = [0.0]

    def client(browser: Browser) -> None:
        headers = {"X-CSRF-Token": browser.csrf, "Accept": "application/json"}
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        unanswered = 0
        start.wait()
        while time.monotonic() < deadline[0]:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            began = time.perf_counter()
            try:
                answer = browser.session.post(base_url + route, headers=headers, timeout=30)
            except requests.RequestException as exc:
                unanswered += 1
                errors[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - began)
            if answer.status_code != 200 or "url" not in answer.json():
                errors[f"HTTP {answer.status_code}"] += 1
        with lock:
            result.latencies.extend(latencies)
            result.unanswered += unanswered
            result.errors.update(errors)

    threads = [threading.Thread(target=client, args=(b,), daemon=True) for b in browsers]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    deadline[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join(seconds + 60)
    result.seconds = time.monotonic() - began
    return result


class Gunicorn:
    """The web app under gunicorn, as a child process on a loopback port."""

    def __init__(self, environment: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIDGATE_"))}
        env.update(environment)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv, our own app
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                str(GUNICORN_WORKERS),
                "--threads",
                str(GUNICORN_THREADS),
                "-b",
                f"{LOOPBACK}:{self.port}",
                "app.web:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        try:
            wait_for_port(self.port, timeout=timeout)
        except TimeoutError as exc:
            raise LoadTestError(f"gunicorn did not start; see {self.log_path}") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # both workers import and build the app
            if self.process.poll() is not None:
                raise LoadTestError(f"gunicorn exited; see {self.log_path}")
            try:
                if requests.get(self.url + "/auth/sign-in", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise LoadTestError(f"gunicorn does not answer; see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


def run_load(
    seconds: float = DEFAULT_SECONDS,
    clients: int = DEFAULT_CLIENTS,
    *,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    say: Callable[[str], None] = print,
) -> LoadResult:
    """Start a stack and gunicorn, sign ``clients`` browsers in, drive the grant route."""
    with tempfile.TemporaryDirectory(prefix="vidgate-load-") as tmp:
        state_dir = Path(tmp)
        if MEDIA_CACHE.exists():  # demo media encoded once, reused
            shutil.copytree(MEDIA_CACHE, state_dir / "media")
        options = DevOptions(
            port=free_port(), aws_port=free_port(), edge_port=free_port(), state_dir=state_dir
        )
        with DevStack(options, say=lambda line: None) as stack:
            gunicorn = Gunicorn(stack.environment, state_dir / "gunicorn.log")
            try:
                gunicorn.wait_ready()
                password = next(
                    u["password"] for u in stack.document["users"] if u["username"] == USERNAME
                )
                video_id = _premium_video(gunicorn.url)
                say(f"load: signing in {clients} browsers as {USERNAME}...")
                browsers = [
                    sign_in(gunicorn.url, USERNAME, password, video_id) for _ in range(clients)
                ]
                return drive(
                    gunicorn.url, browsers, video_id, seconds=seconds, max_requests=max_requests
                )
            finally:
                gunicorn.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="vidgate load test (printed, never asserted)")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS)
    parser.add_argument("--max-requests", type=int, default=DEFAULT_MAX_REQUESTS)
    args = parser.parse_args(argv)
    result = run_load(args.seconds, args.clients, max_requests=args.max_requests)
    for line in result.lines():
        print(line, flush=True)


if __name__ == "__main__":
    main()
