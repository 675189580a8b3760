"""Text files as real ones come: the encoding declared, or found from the byte-order mark, or
UTF-8, or GB18030 (a superset of GBK/GB2312, the usual encoding of Chinese CSV exports).

:func:`read_text` is the one decoder of the delimited readers (station files, point and area
sources, scaling tables); a file that is missing, empty, binary or undecodable is an
:class:`~aqforecast.io.InputFileError` naming it (never a UnicodeDecodeError).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .netcdf import InputFileError

__all__ = ["read_text", "FALLBACK_ENCODINGS"]

log = logging.getLogger(__name__)

#: Encodings tried, in order, for a file without a byte-order mark.
FALLBACK_ENCODINGS = ("utf-8", "gb18030")
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


class TextDecodeError(InputFileError):
    """A text file that cannot be decoded (or is empty / binary); ``expected`` says what a
    reader needs instead."""

    def __init__(self, message: str, expected: str):
        super().__init__(message)
        self.expected = expected


def read_text(path, encoding: str | None = None, what: str = "text") -> str:
    """The decoded text of ``path``: ``encoding`` when given, else by byte-order mark
    (UTF-8-BOM, UTF-16), else UTF-8, else GB18030. Line endings are kept. Raises
    :class:`TextDecodeError` (an InputFileError) naming the file; a missing file raises
    :class:`FileNotFoundError`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} file not found: {path}")
    raw = path.read_bytes()
    if not raw.strip():
        raise TextDecodeError(f"{path}: empty {what} file", "a non-empty text file")
    if encoding is not None:
        try:
            return raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise TextDecodeError(f"{path}: not text in the declared encoding {encoding!r} "
                                  f"({exc})", f"text in the declared encoding {encoding!r}") \
                from None
    for bom, enc in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(enc)
            except UnicodeDecodeError as exc:
                raise TextDecodeError(f"{path}: not {enc} text after its byte-order mark "
                                      f"({exc})", f"{enc} text after its byte-order mark") \
                    from None
    if b"\x00" in raw:
        raise TextDecodeError(f"{path}: not a text file (it has NUL bytes: binary, or UTF-16 "
                              f"without a byte-order mark; declare the encoding)",
                              "a text file (NUL bytes: binary, or UTF-16 without a byte-order "
                              "mark; declare the encoding)")
    for enc in FALLBACK_ENCODINGS:
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        if enc != "utf-8":
            log.info("%s: read as %s (not UTF-8)", path, enc)
        return text
    raise TextDecodeError(f"{path}: not text in any of {', '.join(FALLBACK_ENCODINGS)} (and no "
                          f"byte-order mark); declare the encoding",
                          f"text in {' or '.join(FALLBACK_ENCODINGS)} (or a byte-order mark, or "
                          f"a declared encoding)")
