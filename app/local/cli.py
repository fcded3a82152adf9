"""``vidgate dev``: the command the local stack adds to the ``vidgate`` CLI.

It is registered as an entry point of the group ``vidgate.commands``
(pyproject.toml), which :func:`app.ops.cli.build_parser` loads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.keys import DEFAULT_KEY_ALGORITHM, KEY_ALGORITHMS
from app.local.ports import PortBusyError
from app.ops.cli import UserError


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {port}")
    return port


def add_dev(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = sub.add_parser("dev", help="run the whole product on the embedded local stack")
    dev.set_defaults(run=run)
    dev.add_argument(
        "--port", type=_port, default=5000, help="web app port, behind the edge (default 5000)"
    )
    dev.add_argument(
        "--aws-port", type=_port, default=5001, help="AWS emulator port (default 5001)"
    )
    dev.add_argument(
        "--edge-port",
        type=_port,
        default=5002,
        help="the site: local CloudFront edge, the front door (default 5002)",
    )
    dev.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".vidgate"),
        help="folder for dev-stack.json and local state (default .vidgate)",
    )
    dev.add_argument(
        "--key-algorithm",
        choices=KEY_ALGORITHMS,
        default=DEFAULT_KEY_ALGORITHM,
        help=f"CloudFront signing key type (default {DEFAULT_KEY_ALGORITHM})",
    )
    dev.add_argument(
        "--url-ttl",
        type=int,
        default=None,
        metavar="SECONDS",
        help="signed URL lifetime (default 300)",
    )
    for flag, help_text in (
        ("--stream-limit-free", "concurrent streams of a free viewer (default 1)"),
        ("--stream-limit-premium", "concurrent streams of a premium viewer (default 2)"),
        ("--heartbeat", "player heartbeat seconds; silent for two = stream over (default 60)"),
        ("--auth-rate-limit", "sign-in POSTs per client address in 5 minutes at the edge "
         "(default: the web ACL's 20; for test stacks whose browsers all share 127.0.0.1)"),
    ):  # fmt: skip
        dev.add_argument(flag, type=int, default=None, metavar="N", help=help_text)


def run(args: argparse.Namespace) -> int:
    from app.local.stack import DevOptions, run_dev

    options = DevOptions(
        port=args.port,
        aws_port=args.aws_port,
        edge_port=args.edge_port,
        state_dir=args.state_dir,
        key_algorithm=args.key_algorithm,
        url_ttl_seconds=args.url_ttl,
        auth_rate_limit=args.auth_rate_limit,
        stream_settings={
            name: str(value)
            for name, value in (
                ("VIDGATE_STREAM_LIMIT_FREE", args.stream_limit_free),
                ("VIDGATE_STREAM_LIMIT_PREMIUM", args.stream_limit_premium),
                ("VIDGATE_HEARTBEAT_SECONDS", args.heartbeat),
            )
            if value is not None
        },
    )
    try:
        return run_dev(options)
    except PortBusyError as exc:
        raise UserError(str(exc)) from exc
