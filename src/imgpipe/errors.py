"""Every error imgpipe raises on purpose, with its stable machine code, HTTP status and exit code.

::

    ImgpipeError                      (code, http_status, exit_code, permanent)
    ├── RejectedError                 the input is refused; retrying cannot help
    │   ├── EmptyError                empty              400
    │   ├── UnsupportedTypeError      unsupported_type   415
    │   ├── TooLargeBytesError        too_large_bytes    413
    │   ├── TooManyPixelsError        too_many_pixels    422
    │   ├── TooManyFramesError        too_many_frames    422
    │   ├── CorruptError              corrupt            422
    │   └── TruncatedError            truncated          422
    ├── NotFoundError                 not_found          404
    ├── ConflictError                 conflict           409   (a conditional write lost)
    ├── UploadPolicyError             upload_policy      403   (presigned upload refused)
    ├── BadRequestError               bad_request        400   (malformed request)
    │   ├── InvalidRequestError       invalid_request    422   (parameters fail validation)
    │   ├── MethodNotAllowedError     method_not_allowed 405
    │   └── RequestTimeoutError       request_timeout    408   (the body came too slowly)
    ├── UnauthorizedError             unauthorized       401   (missing or wrong token)
    ├── BusyError                     busy               503   (over the concurrency cap)
    ├── ProcessingTimeoutError        timeout            504   (transient: may be retried)
    ├── UnavailableError              unavailable        502   (the client cannot reach the API)
    ├── ConfigError                   config             500   (bad settings file or value)
    └── InternalError                 internal           500   (a bug or an environment fault)

The ``code`` strings are an API: clients, dashboards and the CLI's ``--json`` output match on
them. Add codes, never rename them.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "EX_ENGINE_BROKEN",
    "BadRequestError",
    "BusyError",
    "ConfigError",
    "ConflictError",
    "CorruptError",
    "EmptyError",
    "ImgpipeError",
    "InternalError",
    "InvalidRequestError",
    "MethodNotAllowedError",
    "NotFoundError",
    "ProcessingTimeoutError",
    "RejectedError",
    "RequestTimeoutError",
    "TooLargeBytesError",
    "TooManyFramesError",
    "TooManyPixelsError",
    "TruncatedError",
    "UnauthorizedError",
    "UnavailableError",
    "UnsupportedTypeError",
    "UploadPolicyError",
    "error_for_code",
]

# Exit codes follow sysexits.h where one fits: 65 = EX_DATAERR (bad input data).
_EX_DATAERR = 65
# The exit status of a worker process (CLI, service, Lambda container) that stopped because its
# imaging engine failed the self-check: EX_SOFTWARE + 100, clear of signals and Python's own.
EX_ENGINE_BROKEN = 170


class ImgpipeError(Exception):
    """Base of every deliberate imgpipe error."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 70  # EX_SOFTWARE
    permanent: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """The JSON shape every face uses: ``{"code": ..., "message": ...}``."""
        return {"code": self.code, "message": self.message}


class RejectedError(ImgpipeError):
    """The input itself is unacceptable; processing it again gives the same answer."""

    permanent = True
    exit_code = _EX_DATAERR


class EmptyError(RejectedError):
    code = "empty"
    http_status = 400


class UnsupportedTypeError(RejectedError):
    code = "unsupported_type"
    http_status = 415


class TooLargeBytesError(RejectedError):
    code = "too_large_bytes"
    http_status = 413


class TooManyPixelsError(RejectedError):
    code = "too_many_pixels"
    http_status = 422


class TooManyFramesError(RejectedError):
    code = "too_many_frames"
    http_status = 422


class CorruptError(RejectedError):
    code = "corrupt"
    http_status = 422


class TruncatedError(RejectedError):
    code = "truncated"
    http_status = 422


class NotFoundError(ImgpipeError):
    code = "not_found"
    http_status = 404
    exit_code = 66  # EX_NOINPUT


class ConflictError(ImgpipeError):
    code = "conflict"
    http_status = 409
    exit_code = 75


class UploadPolicyError(ImgpipeError):
    code = "upload_policy"
    http_status = 403
    exit_code = 77  # EX_NOPERM


class BadRequestError(ImgpipeError):
    code = "bad_request"
    http_status = 400
    exit_code = 64  # EX_USAGE


class InvalidRequestError(BadRequestError):
    code = "invalid_request"
    http_status = 422


class MethodNotAllowedError(BadRequestError):
    code = "method_not_allowed"
    http_status = 405


class RequestTimeoutError(BadRequestError):
    code = "request_timeout"
    http_status = 408


class UnauthorizedError(ImgpipeError):
    code = "unauthorized"
    http_status = 401
    exit_code = 77  # EX_NOPERM


class BusyError(ImgpipeError):
    code = "busy"
    http_status = 503
    exit_code = 75  # EX_TEMPFAIL


class ProcessingTimeoutError(ImgpipeError):
    code = "timeout"
    http_status = 504
    exit_code = 75  # EX_TEMPFAIL


class UnavailableError(ImgpipeError):
    """Raised by ``imgpipe.client`` when the server cannot be reached (never sent by one)."""

    code = "unavailable"
    http_status = 502
    exit_code = 69  # EX_UNAVAILABLE


class ConfigError(ImgpipeError):
    code = "config"
    http_status = 500
    exit_code = 78  # EX_CONFIG


class InternalError(ImgpipeError):
    code = "internal"


_BY_CODE: dict[str, type[ImgpipeError]] = {
    cls.code: cls
    for cls in (
        EmptyError,
        UnsupportedTypeError,
        TooLargeBytesError,
        TooManyPixelsError,
        TooManyFramesError,
        CorruptError,
        TruncatedError,
        NotFoundError,
        ConflictError,
        UploadPolicyError,
        BadRequestError,
        InvalidRequestError,
        MethodNotAllowedError,
        RequestTimeoutError,
        UnauthorizedError,
        BusyError,
        ProcessingTimeoutError,
        UnavailableError,
        ConfigError,
        InternalError,
    )
}


def error_for_code(code: str, message: str) -> ImgpipeError:
    """Rebuild a typed error from its wire form (e.g. a result sent back by a worker process)."""
    return _BY_CODE.get(code, InternalError)(message)
