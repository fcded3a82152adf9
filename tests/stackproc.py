"""Run ``vidgate dev`` as a real child process for integration and e2e tests.

The stack gets free loopback ports and its own state folder; demo media are
cached under ``.cache/test-media`` so only the first run pays for encoding.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.local.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
MEDIA_CACHE = ROOT / ".cache" / "test-media"


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    state_dir: Path
    document: dict[str, Any]
    output: list[str] = field(default_factory=list)

    @property
    def site_url(self) -> str:
        """The front door (the edge): the one URL a person opens."""
        return str(self.document["site_url"])

    @property
    def web_url(self) -> str:
        """The web app's own origin, behind the edge."""
        return str(self.document["web_url"])

    @property
    def edge_url(self) -> str:
        return str(self.document["edge_url"])

    @property
    def aws_endpoint(self) -> str:
        return str(self.document["aws_endpoint"])

    def user(self, name: str) -> dict[str, Any]:
        return next(u for u in self.document["users"] if u["username"] == name)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)


def _refresh_media_cache(media: Path) -> None:
    """Keep the stack's demo media as the cache when the cache is missing or stale.

    A stale cache (another ladder or output format: other fingerprints) would make
    every later stack encode the demos again, long enough to miss its start timeout.
    """
    cached = MEDIA_CACHE / "manifest.json"
    fresh = media / "manifest.json"
    if cached.is_file() and cached.read_bytes() == fresh.read_bytes():
        return
    staged = MEDIA_CACHE.with_name(f"{MEDIA_CACHE.name}.{os.getpid()}")
    shutil.copytree(media, staged, ignore=shutil.ignore_patterns(".clip-*"))
    shutil.rmtree(MEDIA_CACHE, ignore_errors=True)
    try:
        staged.rename(MEDIA_CACHE)  # copied aside first: a parallel start never reads half a cache
    except OSError:  # a parallel start refreshed it first
        shutil.rmtree(staged, ignore_errors=True)


def start_stack(state_dir: Path, *extra_args: str, timeout: float = 240) -> RunningStack:
    """Start ``vidgate dev`` on free ports and wait for "ready".

    A port that was free when picked can be taken by another process while the stack
    generates its media; that start is retried on fresh ports (the media is kept).
    """
    for _ in range(PORT_RETRIES):
        try:
            return _start_stack_once(state_dir, *extra_args, timeout=timeout)
        except PortTakenError:
            continue
    return _start_stack_once(state_dir, *extra_args, timeout=timeout)


PORT_RETRIES = 2


class PortTakenError(RuntimeError):
    """``vidgate dev`` exited because a port picked for it was taken meanwhile."""


def _start_stack_once(state_dir: Path, *extra_args: str, timeout: float) -> RunningStack:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "dev-stack.json").unlink(missing_ok=True)
    media = state_dir / "media"
    if not media.exists() and MEDIA_CACHE.exists():
        shutil.copytree(MEDIA_CACHE, media)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIDGATE_"))}
    env["PYTHONUNBUFFERED"] = "1"
    args = [
        sys.executable,
        "-m",
        "app.ops",
        "dev",
        "--port",
        str(free_port()),
        "--aws-port",
        str(free_port()),
        "--edge-port",
        str(free_port()),
        "--state-dir",
        str(state_dir),
        *extra_args,
    ]
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.strip() == "ready":
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            if any("is already in use" in line for line in lines):
                raise PortTakenError("\n".join(lines[-5:]))
            raise RuntimeError("vidgate dev did not become ready:\n" + "\n".join(lines[-60:]))
    _refresh_media_cache(media)
    document = json.loads((state_dir / "dev-stack.json").read_text())
    return RunningStack(process, state_dir, document, lines)
