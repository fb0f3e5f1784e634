"""Every exception omsflow raises on purpose, in one tree.

::

    OmsflowError                     base; anything omsflow raises on purpose
    ├── SpecError                    one problem in one spec file (.location, .code, .hint)
    │   └── SpecErrors               all problems of a load (str = one line each, sorted)
    ├── ConfigError                  settings/env/arguments missing or invalid
    ├── LifecycleError
    │   ├── UnknownTrigger           trigger not in the machine
    │   └── TransitionRefused        trigger exists but is blocked (.blockers)
    ├── StorageError
    │   ├── DatabaseUnavailable      the database cannot be opened (URL shown, password masked)
    │   ├── StaleOrder               version changed under us; the caller retries
    │   ├── DuplicateEvent           idempotency key already applied; acknowledged
    │   └── NotFound                 a record the user named does not exist
    └── ChannelError                 .channel, .resource, .status, .retryable, .retry_after
        ├── ChannelUnavailable       retryable: timeouts, connection errors, 5xx, 429
        ├── ChannelAuthFailed        401: the key is wrong or disabled
        ├── ChannelPermissionMissing the key lacks a resource/method permission
        ├── ChannelRejected          400/405/422...: the store refused the payload
        ├── ChannelNotFound          404
        └── ChannelProtocolError     malformed or dangerous body (not a webservice, XML bomb)

Messages are one line, say what and where, and may end with a ``(fix: ...)`` clause.
They never contain a secret: callers pass redacted text only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


class OmsflowError(Exception):
    """Base of everything omsflow raises on purpose; the CLI prints it as one line."""

    exit_code: ClassVar[int] = 1


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class Location:
    """Where a spec problem is: file, 1-based line and column, and the JSON path."""

    file: str
    line: int
    column: int
    json_path: str = "$"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class SpecError(OmsflowError):
    """One problem in one spec file; fix the YAML at the location it names."""

    exit_code = 1

    def __init__(
        self, code: str, message: str, location: Location, hint: str | None = None
    ) -> None:
        self.code = code
        self.message = message
        self.location = location
        self.hint = hint
        super().__init__(self.line())

    def line(self) -> str:
        """The one-line, compiler-style rendering: ``FILE:LINE:COL: message (at PATH)``."""
        text = f"{self.location}: {self.message} (at {self.location.json_path})"
        if self.hint:
            text += f"; {self.hint}"
        return text + f" [{self.code}]"


class SpecErrors(OmsflowError):
    """All problems found in one load; each prints on its own line."""

    exit_code = 1

    def __init__(self, errors: Iterable[SpecError]) -> None:
        self.errors: list[SpecError] = sorted(
            errors,
            key=lambda e: (e.location.file, e.location.line, e.location.column, e.code),
        )
        super().__init__("\n".join(e.line() for e in self.errors))


class ConfigError(OmsflowError):
    """Settings, environment or arguments are missing or invalid; never shows secret values."""

    exit_code = 78


# --------------------------------------------------------------------------- lifecycle


class LifecycleError(OmsflowError):
    """A lifecycle operation requested by a user could not be carried out."""

    exit_code = 1


class UnknownTrigger(LifecycleError):
    """The trigger is not part of the machine at all."""


class TransitionRefused(LifecycleError):
    """The trigger exists but is not enabled now; ``blockers`` says why."""

    def __init__(self, message: str, blockers: Sequence[Any] = ()) -> None:
        self.blockers = tuple(blockers)
        super().__init__(message)


# --------------------------------------------------------------------------- storage


class StorageError(OmsflowError):
    """A storage-level condition the caller must handle."""


class DatabaseUnavailable(StorageError):
    """The database at the configured URL cannot be opened or is not an omsflow database."""

    exit_code = 69


class StaleOrder(StorageError):
    """The order's version changed between read and write; retry the event."""


class DuplicateEvent(StorageError):
    """This idempotency key was applied before; acknowledge, do not apply again."""


class NotFound(StorageError):
    """A record named by the user (order reference, SKU, store, outbox id) does not exist."""

    exit_code = 1


# --------------------------------------------------------------------------- channel


class ChannelError(OmsflowError):
    """A call to a sales channel failed; ``retryable`` decides whether the outbox retries."""

    retryable: ClassVar[bool] = False
    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        channel: str = "prestashop",
        resource: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        store_code: str | None = None,
    ) -> None:
        self.channel = channel
        self.resource = resource
        self.status = status
        self.retry_after = retry_after
        self.store_code = store_code
        super().__init__(message)


class ChannelUnavailable(ChannelError):
    """Timeout, connection error, 5xx or 429: retry later with backoff (Retry-After honoured)."""

    retryable = True
    exit_code = 69


class ChannelAuthFailed(ChannelError):
    """The store refused the key (401); fix the key in Advanced Parameters > Webservice."""

    exit_code = 77


class ChannelPermissionMissing(ChannelError):
    """The key lacks a permission (resource x method); enable it in the store's webservice page."""

    exit_code = 77


class ChannelRejected(ChannelError):
    """The store refused the request (4xx with an error code); not retried, dead-lettered."""


class ChannelNotFound(ChannelError):
    """The store has no such record (404)."""


class ChannelProtocolError(ChannelError):
    """The answer is not a PrestaShop webservice answer, or is malformed or dangerous XML."""

    exit_code = 69
