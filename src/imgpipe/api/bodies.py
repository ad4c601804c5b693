"""Request bodies read as they arrive: capped in bytes and in time, spooled to a temporary file.

A body is never held whole in memory past 1 MiB (the rest spills to disk), is refused with 413
the moment it passes its cap (``Content-Length`` is checked before a byte is read), and with 408
when it has not fully arrived by the request deadline - a client sending a byte a second cannot
hold a connection for longer than that.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from typing import IO

from starlette.requests import ClientDisconnect, Request

from imgpipe.api.forms import Form, FormReader
from imgpipe.errors import BadRequestError, RequestTimeoutError, TooLargeBytesError

__all__ = ["read_body", "read_form"]

_MEMORY_LIMIT = 1 << 20
_FORM_OVERHEAD = 64 << 10  # multipart boundaries and part headers around the file


async def _chunks(request: Request, cap: int, deadline_s: float, hint: str) -> AsyncIterator[bytes]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise TooLargeBytesError(f"request body of {int(declared):,} bytes is over the "
                                 f"{cap:,} byte limit{hint}")  # fmt: skip
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    stream = request.stream().__aiter__()
    total = 0
    while True:
        try:
            chunk = await asyncio.wait_for(anext(stream), max(0.0, end - loop.time()))
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            raise RequestTimeoutError(
                f"the request body did not arrive within {deadline_s:g} s"
            ) from exc
        except ClientDisconnect as exc:
            raise BadRequestError("the client closed the connection mid-body") from exc
        total += len(chunk)
        if total > cap:
            raise TooLargeBytesError(f"request body is over the {cap:,} byte limit{hint}")
        yield chunk


async def read_body(request: Request, cap: int, deadline_s: float, hint: str = "") -> IO[bytes]:
    """The raw body in a spooled temporary file (positioned at 0); the caller closes it."""
    spool = tempfile.SpooledTemporaryFile(max_size=_MEMORY_LIMIT)  # noqa: SIM115 - returned open
    try:
        async for chunk in _chunks(request, cap, deadline_s, hint):
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


async def read_form(request: Request, file_cap: int, deadline_s: float, hint: str = "") -> Form:
    """A ``multipart/form-data`` body parsed as it arrives (file part spooled); the caller
    closes the form."""
    reader = FormReader(request.headers.get("content-type", ""), file_cap)
    try:
        async for chunk in _chunks(request, file_cap + _FORM_OVERHEAD, deadline_s, hint):
            reader.feed(chunk)
        return reader.finish()
    except TooLargeBytesError as exc:
        reader.form.close()
        if hint and not exc.message.endswith(hint):
            raise TooLargeBytesError(exc.message + hint) from exc
        raise
    except BaseException:
        reader.form.close()
        raise
