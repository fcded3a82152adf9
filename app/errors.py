"""The domain's refusals and failures, one class per reason (tests assert the class).

Adapters (Flask error handlers, the Lambda router) map these to HTTP in one
place each, through ``status`` and ``code``; the message is for logs and
humans, the code is the stable contract.
"""

from __future__ import annotations

from typing import Any


class VidgateError(Exception):
    """Base of every refusal the domain can give."""

    status = 400
    code = "bad_request"

    def details(self) -> dict[str, Any]:
        """Fields of the error body besides ``error`` and ``message`` (none by default)."""
        return {}


class BadRequestError(VidgateError):
    """The input is malformed (body, path, query)."""

    status = 400
    code = "bad_request"


class UnauthorizedError(VidgateError):
    """No usable credentials were presented."""

    status = 401
    code = "unauthorized"


class ForbiddenError(VidgateError):
    """Authenticated, but not allowed (e.g. not in the admin group)."""

    status = 403
    code = "forbidden"


class PremiumRequiredError(VidgateError):
    """The video is premium and the user's entitlement is not active."""

    status = 403
    code = "premium_required"


class NotFoundError(VidgateError):
    status = 404
    code = "not_found"


class VideoNotFoundError(NotFoundError):
    """No published video has this id."""


class UserNotFoundError(NotFoundError):
    """No user record has this id (or username / e-mail)."""


class EmailInUseError(VidgateError):
    """Another user's record already has this e-mail address (compared in lower case)."""

    status = 409
    code = "email_in_use"
    friendly = (
        "That e-mail address already belongs to another account. Sign in, or reset "
        "the password if you have forgotten it."
    )


class AmbiguousUserError(VidgateError):
    """A lookup matched more than one user: it is refused, never resolved by picking one.

    ``matches`` are the records found (at least two; possibly not all of them).
    """

    status = 409
    code = "ambiguous_user"
    friendly = "More than one account matches that. Use the username instead."

    def __init__(self, message: str, *, matches: tuple[Any, ...] = ()) -> None:
        super().__init__(message)
        self.matches = matches


class VersionConflictError(VidgateError):
    """An optimistic-concurrency check failed: someone else changed the record.

    ``current`` carries the state that won, so callers can show it.
    """

    status = 409
    code = "conflict"

    def __init__(self, message: str, *, expected: Any = None, current: Any = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.current = current


class DependencyUnavailableError(VidgateError):
    """A dependency (DynamoDB, Secrets Manager, the JWKS) could not be read.

    The product fails closed: no grant is issued.
    """

    status = 503
    code = "unavailable"


class ConfigurationError(Exception):
    """The process is misconfigured; it refuses to start. Not a request error."""


class PublishingConflictError(VidgateError):
    """A publishing transition lost a race or does not apply to the video's state.

    ``expected`` says what the transition needed, ``current_state`` and
    ``current_attempt`` what the video had when it was refused (None: no such video).
    """

    status = 409
    code = "publishing_conflict"

    def __init__(
        self,
        message: str,
        *,
        video_id: str,
        expected: str,
        current_state: str | None = None,
        current_attempt: int | None = None,
    ) -> None:
        super().__init__(message)
        self.video_id = video_id
        self.expected = expected
        self.current_state = current_state
        self.current_attempt = current_attempt


class VideoExistsError(PublishingConflictError):
    """A draft cannot be created: a video with this id already exists."""

    code = "video_exists"


class InvalidTransitionError(PublishingConflictError):
    """The video's state does not allow this transition (e.g. ready → processing)."""

    code = "invalid_state"


class StaleAttemptError(PublishingConflictError):
    """The write came from a transcode attempt that is no longer the current one."""

    code = "stale_attempt"


class AttemptsExhaustedError(PublishingConflictError):
    """The bounded number of transcode attempts is used up: the video is to be failed."""

    code = "attempts_exhausted"
