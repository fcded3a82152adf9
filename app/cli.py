"""The ``vidgate`` command line: ``dev`` runs the local stack; operator commands follow.

Exit codes: 0 success, 1 a user error (one-line message), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from app.errors import ConfigurationError


class UserError(Exception):
    """A mistake the operator can fix; printed as one line, exit code 1."""


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidgate", description="vidgate: the premium-video gate")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole product on the embedded local stack")
    dev.add_argument("--port", type=_port, default=5000, help="web app port (default 5000)")
    dev.add_argument("--aws-port", type=_port, default=5001, help="AWS emulator port (default 5001)")
    dev.add_argument("--edge-port", type=_port, default=5002, help="local CloudFront edge port (5002)")
    dev.add_argument("--state-dir", type=Path, default=Path(".vidgate"),
                     help="folder for dev-stack.json and local state (default .vidgate)")
    dev.add_argument("--key-algorithm", choices=("ecdsa-p256", "rsa-2048"), default="ecdsa-p256",
                     help="CloudFront signing key type (default ecdsa-p256)")
    dev.add_argument("--url-ttl", type=int, default=None, metavar="SECONDS",
                     help="signed URL lifetime (default 300)")
    return parser


def _dev(args: argparse.Namespace) -> int:
    from app.local.ports import PortBusyError
    from app.local.stack import DevOptions, run_dev

    options = DevOptions(port=args.port, aws_port=args.aws_port, edge_port=args.edge_port,
                         state_dir=args.state_dir, key_algorithm=args.key_algorithm,
                         url_ttl_seconds=args.url_ttl)
    try:
        return run_dev(options)
    except PortBusyError as exc:
        raise UserError(str(exc)) from exc


COMMANDS = {"dev": _dev}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UserError, ConfigurationError) as exc:
        print(f"vidgate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
