"""The error tree: stable machine codes, HTTP statuses and exit codes, rebuilt from the wire."""

from __future__ import annotations

import pytest

from imgpipe import errors
from imgpipe.errors import (
    ConfigError,
    CorruptError,
    EmptyError,
    ImgpipeError,
    InternalError,
    ProcessingTimeoutError,
    RejectedError,
    TooLargeBytesError,
    TooManyFramesError,
    TooManyPixelsError,
    TruncatedError,
    UnsupportedTypeError,
    error_for_code,
)

ALL_ERRORS = [
    getattr(errors, name)
    for name in errors.__all__
    if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), ImgpipeError)
]
CONCRETE = [cls for cls in ALL_ERRORS if cls not in (ImgpipeError, RejectedError)]


@pytest.mark.parametrize(
    ("cls", "code", "status"),
    [
        (EmptyError, "empty", 400),
        (UnsupportedTypeError, "unsupported_type", 415),
        (TooLargeBytesError, "too_large_bytes", 413),
        (TooManyPixelsError, "too_many_pixels", 422),
        (TooManyFramesError, "too_many_frames", 422),
        (CorruptError, "corrupt", 422),
        (TruncatedError, "truncated", 422),
        (ProcessingTimeoutError, "timeout", 504),
        (ConfigError, "config", 500),
        (InternalError, "internal", 500),
    ],
)
def test_documented_codes_and_statuses_are_stable(
    cls: type[ImgpipeError], code: str, status: int
) -> None:
    """The machine codes are an API: each class keeps its documented code and HTTP status."""
    assert (cls.code, cls.http_status) == (code, status)


def test_codes_are_unique() -> None:
    """No two concrete error classes share a code."""
    codes = [cls.code for cls in CONCRETE]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("cls", CONCRETE, ids=lambda cls: cls.__name__)
def test_every_error_survives_the_wire(cls: type[ImgpipeError]) -> None:
    """An error sent as {code, message} (e.g. from a worker process) is rebuilt as its class."""
    wire = cls("what happened").to_dict()
    rebuilt = error_for_code(wire["code"], wire["message"])
    assert type(rebuilt) is cls
    assert rebuilt.message == "what happened"
    assert str(rebuilt) == "what happened"


def test_unknown_code_becomes_an_internal_error() -> None:
    """A code this version does not know is rebuilt as an internal error, message kept."""
    rebuilt = error_for_code("from_the_future", "eh")
    assert type(rebuilt) is InternalError
    assert rebuilt.message == "eh"


@pytest.mark.parametrize(
    "cls",
    [cls for cls in CONCRETE if issubclass(cls, RejectedError)],
    ids=lambda cls: cls.__name__,
)
def test_rejections_are_permanent_client_errors(cls: type[RejectedError]) -> None:
    """Every rejection is permanent, a 4xx, and exits with EX_DATAERR (65)."""
    assert cls.permanent is True
    assert 400 <= cls.http_status < 500
    assert cls.exit_code == 65


def test_timeout_is_transient() -> None:
    """A processing timeout may be retried: it is not permanent and exits EX_TEMPFAIL (75)."""
    assert ProcessingTimeoutError.permanent is False
    assert ProcessingTimeoutError.exit_code == 75


def test_config_error_exits_ex_config() -> None:
    """A configuration error exits with EX_CONFIG (78)."""
    assert ConfigError.exit_code == 78
