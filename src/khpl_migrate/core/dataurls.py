"""Data URLs (RFC 2397): how the registration app inlined every image in the record.

`data:image/jpeg;base64,/9j/4AAQ...`: a MIME type, optional parameters,
`;base64` or percent-encoding, a comma, then the bytes. Pure: no I/O.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

import pybase64

from khpl_migrate.core.errors import RecordError

# The MIME types a registration form uploads, and the key extension of each
# (the guide's: image/jpeg -> jpeg, image/png -> png, application/pdf -> pdf).
EXTENSIONS = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/pjpeg": "jpeg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "image/svg+xml": "svg",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "application/octet-stream": "bin",
}

# RFC 2397: data:[<mediatype>][;base64],<data>, where a mediatype is type/subtype with
# ;attribute=value parameters (RFC 2045 tokens, or a quoted string). The comma is part
# of the shape: "data:image/jpeg;base64 was missing here" is a remark, not a data URL.
_TOKEN = r"[!#$%&'*+\-.^_`{|}~0-9A-Za-z]+"
_DATA_URL = re.compile(
    rf"data:(?P<mime>{_TOKEN}/{_TOKEN})?"
    rf"(?P<params>(?:;{_TOKEN}=(?:{_TOKEN}|\"[^\",]*\"))*)"
    r"(?P<base64>;base64)?,",
    re.IGNORECASE,
)


# The first bytes of the formats a registration form uploads (file signatures).
_MAGIC = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"%PDF-": "application/pdf",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


def sniff(data: bytes) -> str | None:
    """The MIME type the bytes announce themselves as, where they do."""
    for magic, mime in _MAGIC.items():
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True)
class DataUrl:
    mime: str  # lower-case, as stored in imageUploadResults
    header: str  # everything up to and including the comma, as written
    data: bytes

    @property
    def canonical(self) -> bool:
        return self.header == f"data:{self.mime};base64,"


def looks_like_data_url(value: str) -> bool:
    """True when the string has RFC 2397's shape up to its comma; its payload may still be bad."""
    return _DATA_URL.match(value) is not None


def parse_data_url(value: str, where: str = "value") -> DataUrl:
    """Decode a data URL (RFC 2397): base64 or percent-encoded, any case, line breaks allowed."""
    match = _DATA_URL.match(value)
    if match is None:
        raise RecordError(f"malformed data URL at {where} (expected data:<type>;base64,<data>)")
    header = match.group(0)
    mime = (match.group("mime") or "application/octet-stream").lower()
    payload = value[match.end() :]
    if match.group("base64"):
        data = _b64decode(payload, where)
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    if not data:
        raise RecordError(f"empty data URL at {where}: no image bytes")
    return DataUrl(mime=mime, header=header, data=data)


def _b64decode(payload: str, where: str) -> bytes:
    try:
        raw = payload.encode("ascii")
    except UnicodeEncodeError:
        raise RecordError(f"invalid base64 at {where}: non-ASCII characters") from None
    # bytes.translate deletes in C; a regex over ~100 KB strings cost ~0.7 ms each.
    raw = raw.translate(None, b" \t\r\n")
    if len(raw) % 4 == 1:
        raise RecordError(f"invalid base64 at {where}: truncated (length {len(raw)})")
    raw += b"=" * (-len(raw) % 4)  # browsers sometimes drop the padding; the bytes are intact
    try:
        return pybase64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise RecordError(f"invalid base64 at {where}: {exc}") from None


def data_url(mime: str, data: bytes) -> str:
    """The canonical data URL the registration app wrote."""
    return f"data:{mime};base64,{pybase64.b64encode(data).decode('ascii')}"
