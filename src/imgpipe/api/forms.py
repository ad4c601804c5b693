"""``multipart/form-data`` parsing with python-multipart, with the file part bounded.

Files larger than 1 MiB spill to a temporary file, so a form of any allowed size costs at most
about a megabyte of memory.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import IO, Any

from python_multipart import create_form_parser
from python_multipart.exceptions import FormParserError

from imgpipe.errors import BadRequestError, TooLargeBytesError

__all__ = ["Form", "FormReader", "parse_form_bytes"]

_MEMORY_LIMIT = 1 << 20


@dataclass
class Form:
    """Text fields, and the one file part (``file``) if present."""

    fields: dict[str, str] = field(default_factory=dict)
    file: IO[bytes] | None = None
    filename: str | None = None
    file_size: int = 0
    file_content_type: str | None = None

    def read_file(self) -> bytes:
        if self.file is None:
            return b""
        self.file.seek(0)
        return self.file.read()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class FormReader:
    """Feed a form body chunk by chunk; ``finish`` returns the parsed ``Form``."""

    def __init__(self, content_type: str, max_file_bytes: int, file_field: str = "file") -> None:
        self.form = Form()
        self._max, self._file_field = max_file_bytes, file_field
        config = {
            "MAX_MEMORY_FILE_SIZE": _MEMORY_LIMIT,
            "UPLOAD_DIR": tempfile.gettempdir(),
            "UPLOAD_DELETE_TMP": True,
            "MAX_BODY_SIZE": max_file_bytes + _MEMORY_LIMIT,
        }
        try:
            self._parser = create_form_parser({"Content-Type": content_type.encode("latin-1")},
                                              self._on_field, self._on_file, config)  # fmt: skip
        except (ValueError, FormParserError) as exc:
            raise BadRequestError(f"cannot parse the form: {exc}") from exc

    def _on_field(self, part: Any) -> None:
        name = (part.field_name or b"").decode("utf-8", "replace")
        value = part.value.decode("utf-8", "replace") if part.value is not None else ""
        self.form.fields[name] = value

    def _on_file(self, part: Any) -> None:
        name = (part.field_name or b"").decode("utf-8", "replace")
        if name != self._file_field or self.form.file is not None:
            part.close()
            raise BadRequestError(f"unexpected file field {name!r}; send one file as 'file'")
        if part.size > self._max:
            part.close()
            raise TooLargeBytesError(f"the file is over the {self._max:,} byte limit")
        self.form.file = part.file_object
        self.form.file_size = part.size
        self.form.file_content_type = part.content_type
        self.form.filename = (part.file_name or b"").decode("utf-8", "replace") or None

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise BadRequestError(f"malformed multipart body: {exc}") from exc

    def finish(self) -> Form:
        try:
            self._parser.finalize()
        except FormParserError as exc:
            raise BadRequestError(f"malformed multipart body: {exc}") from exc
        return self.form


def parse_form_bytes(body: bytes, content_type: str, max_file_bytes: int) -> Form:
    """Parse a whole form held in memory (API Gateway events carry the body whole)."""
    reader = FormReader(content_type, max_file_bytes)
    reader.feed(body)
    return reader.finish()
