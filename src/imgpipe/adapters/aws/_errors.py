"""botocore errors as imgpipe errors, for the AWS adapters.

Each adapter first decides what the codes of its own calls mean (a missing key is
``NotFoundError``, a failed condition is ``ConflictError``); whatever is left - throttling that
outlived botocore's retries, 5xx, access denied, a missing bucket or table, a dropped
connection - becomes ``InternalError`` here, so the job is retried and the API answers 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from imgpipe.errors import InternalError

__all__ = ["THROTTLING_CODES", "error_code", "translated"]

# The throttling codes of the services used here (botocore's standard retry mode retries them
# too; a tagger that retries itself turns botocore's retries off).
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestLimitExceeded", "ProvisionedThroughputExceededException", "LimitExceededException",
    "SlowDown", "TooManyRequestsException",
})  # fmt: skip


def error_code(exc: ClientError) -> str:
    """The service's error code (``NoSuchKey``, ``ConditionalCheckFailedException``, ``404``)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """Turn any botocore error escaping the block into ``InternalError`` naming ``doing``."""
    try:
        yield
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        raise InternalError(f"{doing}: {error_code(exc)} {message}".rstrip()) from exc
    except BotoCoreError as exc:  # connection, timeout, credentials, endpoint
        raise InternalError(f"{doing}: {exc}") from exc
