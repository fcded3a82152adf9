"""The ``vidgate`` command line: operator commands, and ``dev`` from the local stack.

    vidgate dev [--port ...]                        the whole product on loopback
    vidgate admin grant USER [--until DATE] [--as NAME]
    vidgate admin revoke USER [--as NAME]
    vidgate admin show USER
    vidgate admin reset-password USER
    vidgate admin audit [USER] [--limit N] [--cursor C]
    vidgate videos add FILE --title T --tier free|premium [--description D] [--id ID]
    vidgate videos list [--limit N] [--cursor C]
    vidgate videos remove ID [--keep-media]
    vidgate keys create [--algorithm A] [--secret-prefix P] [--slot A|B]
    vidgate keys rotate --current-slot A|B [--algorithm A] [--secret-prefix P]
    vidgate analytics report --from YYYY-MM-DD --to YYYY-MM-DD

USER is a username, an e-mail or a user id. The operator commands read their
configuration like the Lambda functions do (see :mod:`app.ops.admin_cli`; every
one takes ``--env-file``). Exit codes: 0 success, 1 a user error (one-line
message on stderr), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path

from app.errors import BadRequestError, ConfigurationError
from app.keys import DEFAULT_KEY_ALGORITHM, KEY_ALGORITHMS
from app.ops.analytics_cli import add_analytics

COMMAND_GROUP = "vidgate.commands"
DEFAULT_WAIT_SECONDS = 3600.0
"""How long ``videos add``/``retranscode`` wait for ready by default."""
EX_TEMPFAIL = 75
"""Exit code of a re-transcode that must wait for a restore (sysexits.h: try again later)."""
"""Entry-point group of commands other packages add (``app.local.cli`` adds ``dev``)."""


class UserError(Exception):
    """A mistake the operator can fix; printed as one line, exit code 1."""


def _page_size(value: str) -> int:
    """``--limit``: the page-size rule every listing shares."""
    from app.dynamo import parse_limit  # here, not above: boto3 would slow down `vidgate --help`

    try:
        return parse_limit(value)
    except BadRequestError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, got {value!r}") from None


def _part_size(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 5 <= int(value) <= 5120:
        raise argparse.ArgumentTypeError(f"a part size is 5 to 5120 MiB, got {value!r}")
    return int(value)


def _operator_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--env-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="KEY=VALUE settings on top of the environment (default: .vidgate/dev.env "
        "when it exists and no VIDGATE_* variable is set)",
    )
    return common


def _add_admin(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    admin = sub.add_parser("admin", help="premium memberships and their audit trail")
    admin.set_defaults(run=_operator_command)
    actions = admin.add_subparsers(dest="action", required=True, metavar="ACTION")
    as_help = "name recorded in the audit (default: your AWS identity, else your OS user)"

    grant = actions.add_parser("grant", parents=[common], help="make a user premium")
    grant.add_argument("user", metavar="USER", help="username, e-mail or user id")
    grant.add_argument(
        "--until",
        metavar="DATE",
        help="end of the membership: YYYY-MM-DD (through that day, UTC) or an ISO-8601 "
        "moment (no timezone = UTC); default: no end",
    )
    grant.add_argument("--as", dest="as_name", metavar="NAME", help=as_help)

    revoke = actions.add_parser("revoke", parents=[common], help="end a user's premium now")
    revoke.add_argument("user", metavar="USER", help="username, e-mail or user id")
    revoke.add_argument("--as", dest="as_name", metavar="NAME", help=as_help)

    show = actions.add_parser("show", parents=[common], help="a user's premium state")
    show.add_argument("user", metavar="USER", help="username, e-mail or user id")

    reset = actions.add_parser(
        "reset-password",
        parents=[common],
        help="make a user choose a new password and sign them out everywhere",
    )
    reset.add_argument("user", metavar="USER", help="username, e-mail or user id")

    audit = actions.add_parser("audit", parents=[common], help="premium changes, newest first")
    audit.add_argument("user", metavar="USER", nargs="?", help="only this user's changes")
    audit.add_argument("--limit", type=_page_size, default=20, help="records per page (20)")
    audit.add_argument("--cursor", help="the cursor printed after the previous page")


def _add_videos(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    videos = sub.add_parser("videos", help="the video catalog")
    videos.set_defaults(run=_operator_command)
    actions = videos.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add", parents=[common], help="upload a video, wait until it is transcoded and published"
    )
    add.add_argument("file", type=Path, metavar="FILE", help="the video file (MP4 plays best)")
    add.add_argument("--title", required=True)
    add.add_argument("--tier", required=True, choices=("free", "premium"))
    add.add_argument("--description", default="")
    add.add_argument(
        "--id", dest="video_id", metavar="ID", help="video id (default: from the title)"
    )
    add.add_argument(
        "--part-size",
        type=_part_size,
        default=8,
        metavar="MIB",
        help="multipart upload part size in MiB (default 8)",
    )
    _wait_options(add)

    again = actions.add_parser(
        "retranscode",
        parents=[common],
        help="run the ladder again from the kept original (restores an archived one first; "
        f"exit code {EX_TEMPFAIL} then: run it again once restored)",
    )
    again.add_argument("video_id", metavar="ID")
    _wait_options(again)

    listing = actions.add_parser("list", parents=[common], help="every video, published or not")
    listing.add_argument("--limit", type=_page_size, default=50, help="videos per page (50)")
    listing.add_argument("--cursor", help="the cursor printed after the previous page")

    remove = actions.add_parser("remove", parents=[common], help="delete a video")
    remove.add_argument("video_id", metavar="ID")
    remove.add_argument(
        "--keep-media", action="store_true", help="keep the video and poster objects in the bucket"
    )


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="return once the original is uploaded or queued (do not wait for ready)",
    )
    parser.add_argument(
        "--wait-timeout",
        type=_seconds,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help=f"give up waiting after this long (default {DEFAULT_WAIT_SECONDS:.0f})",
    )


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0 < seconds <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most a week")
    return seconds


def _add_keys(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    keys = sub.add_parser("keys", help="CloudFront signing keys (see docs/deploy.md)")
    keys.set_defaults(run=_operator_command)
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("create", "make a key pair; its private half goes to a new secret"),
        ("rotate", "make the next key and print the rotation plan"),
    ):
        parser = actions.add_parser(name, parents=[common], help=text)
        parser.add_argument(
            "--algorithm",
            choices=KEY_ALGORITHMS,
            default=DEFAULT_KEY_ALGORITHM,
            help=f"key type (default {DEFAULT_KEY_ALGORITHM})",
        )
        parser.add_argument(
            "--secret-prefix",
            default=None,
            metavar="PREFIX",
            help="Secrets Manager name prefix (default vidgate/cloudfront-signing-key)",
        )
        if name == "create":
            parser.add_argument(
                "--slot",
                choices=("A", "B"),
                default="A",
                help="template key slot to print parameters for (default A)",
            )
        else:
            parser.add_argument(
                "--current-slot",
                choices=("A", "B"),
                required=True,
                help="the slot whose key signs today (ActiveSigningKey)",
            )
            parser.add_argument(
                "--url-ttl",
                type=int,
                default=None,
                metavar="SECONDS",
                help="signed URL lifetime (default VIDGATE_URL_TTL_SECONDS or 300)",
            )


def build_parser() -> argparse.ArgumentParser:
    """The operator commands, plus those other packages contribute (``vidgate dev``).

    A contribution is an entry point in the group :data:`COMMAND_GROUP`: a
    function that adds its subparser and sets ``run`` as its default. So the
    operator tools never import the local stack, and the local stack brings
    its own command.
    """
    parser = argparse.ArgumentParser(prog="vidgate", description="vidgate: the premium-video gate")
    sub = parser.add_subparsers(dest="command", required=True)
    common = _operator_options()
    for add in (_add_admin, _add_videos, _add_keys, add_analytics):
        add(sub, common)
    from app.ops.billing_cli import add_billing  # selling (docs/selling.md)

    add_billing(sub, common)
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        entry.load()(sub)
    return parser


def _operator_command(args: argparse.Namespace) -> int:
    """``admin``, ``videos`` and ``keys``: every refusal becomes a one-line UserError."""
    from botocore.exceptions import BotoCoreError, ClientError

    from app.config import Need
    from app.errors import VidgateError
    from app.ops import admin_cli
    from app.ops.uploads import PublishError

    needs: dict[str, set[Need]] = {
        "admin": {Need.TABLES},
        "videos": {Need.TABLES, Need.MEDIA},
        "keys": set(),
    }
    if args.command == "admin" and args.action == "reset-password":
        needs["admin"].add(Need.COGNITO)  # the user pool's id
    if args.command == "videos" and args.action == "retranscode":
        needs["videos"].add(Need.INGEST)  # the queue the re-transcode is sent to
    try:
        operator = admin_cli.Operator.load(needs[args.command], env_file=args.env_file)
        run: Callable[[], int]
        if args.command == "admin":
            run = {
                "grant": lambda: admin_cli.admin_grant(
                    operator, args.user, args.until, args.as_name
                ),
                "revoke": lambda: admin_cli.admin_revoke(operator, args.user, args.as_name),
                "show": lambda: admin_cli.admin_show(operator, args.user),
                "reset-password": lambda: admin_cli.admin_reset_password(operator, args.user),
                "audit": lambda: admin_cli.admin_audit(
                    operator, args.user, args.limit, args.cursor
                ),
            }[args.action]
        elif args.command == "videos":
            run = {
                "add": lambda: admin_cli.videos_add(
                    operator,
                    args.file,
                    title=args.title,
                    tier=args.tier,
                    description=args.description,
                    video_id=args.video_id,
                    part_size_mib=args.part_size,
                    wait=args.wait,
                    wait_timeout=args.wait_timeout,
                ),
                "retranscode": lambda: admin_cli.videos_retranscode(
                    operator, args.video_id, wait=args.wait, wait_timeout=args.wait_timeout
                ),
                "list": lambda: admin_cli.videos_list(operator, args.limit, args.cursor),
                "remove": lambda: admin_cli.videos_remove(
                    operator, args.video_id, keep_media=args.keep_media
                ),
            }[args.action]
        else:
            run = {
                "create": lambda: admin_cli.keys_create(
                    operator,
                    algorithm=args.algorithm,
                    secret_prefix=args.secret_prefix,
                    slot=args.slot,
                ),
                "rotate": lambda: admin_cli.keys_rotate(
                    operator,
                    current_slot=args.current_slot,
                    algorithm=args.algorithm,
                    secret_prefix=args.secret_prefix,
                    url_ttl_seconds=args.url_ttl,
                ),
            }[args.action]
        return run()
    except (admin_cli.OperatorError, PublishError, VidgateError, ConfigurationError) as exc:
        raise UserError(admin_cli.one_line(exc)) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise UserError(
            f"AWS refused {exc.operation_name}: {error.get('Code', '?')} {error.get('Message', '')}"
        ) from exc
    except BotoCoreError as exc:
        raise UserError(admin_cli.one_line(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except (UserError, ConfigurationError) as exc:
        print(f"vidgate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
