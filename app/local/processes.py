"""Child processes of the local stack (the AWS emulator, DynamoDB Local): no orphans."""

from __future__ import annotations

import ctypes
import signal
import subprocess
from typing import Any


def die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM us if the parent dies, so nothing is left behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def terminate(proc: subprocess.Popen[Any] | None, *, timeout: float = 10) -> None:
    """SIGTERM ``proc``, SIGKILL it if it is still there after ``timeout``; None is fine."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
