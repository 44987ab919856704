"""A file attached to a dispute message: checked by what it is (magic bytes), not by what the
browser says, at most 5 MB, and given a plain name for Content-Disposition only (the content
lives in the database, never on a path a name could choose)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from werkzeug.utils import secure_filename

from . import Invalid
from .checks import UNSTORABLE

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
#: magic bytes -> (content type, extension): what the file is, whatever the browser says
SIGNATURES = ((b"%PDF-", "application/pdf", "pdf"),
              (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
              (b"\xff\xd8\xff", "image/jpeg", "jpg"))
EXTENSIONS = {"application/pdf": ("pdf",), "image/png": ("png",), "image/jpeg": ("jpg", "jpeg")}


class Upload(Protocol):
    """What a view hands over for a file: werkzeug's FileStorage fits."""
    filename: str | None

    def read(self, size: int = -1) -> bytes: ...


@dataclass
class Attachment:
    filename: str
    content_type: str
    content: bytes


def safe_filename(raw: str | None, extension: str, content_type: str) -> str:
    """A name for Content-Disposition only: the content lives in the database, never on a path
    a name could choose. A name carrying a path (a separator, '..') or control characters is
    refused outright: browsers send a bare name, so such a name is a trick. The rest is reduced
    by secure_filename and ends with the extension of what the content really is."""
    raw = raw or ""
    if "/" in raw or "\\" in raw or ".." in raw or UNSTORABLE.search(raw):
        raise Invalid("the file name must be a plain name, without a path", "attachment", code="file_name")
    name = secure_filename(raw)
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    ext = ext.lower() if ext.lower() in EXTENSIONS[content_type] else extension
    stem = stem.strip("._")[:100]
    return f"{stem}.{ext}" if stem else f"attachment.{extension}"


def read_attachment(upload: Upload | None) -> Attachment | None:
    """None when no file was chosen; else the checked file. Reads at most limit + 1 bytes."""
    if upload is None:
        return None
    content = upload.read(MAX_ATTACHMENT_BYTES + 1)
    if not content and not upload.filename:  # an untouched file input
        return None
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise Invalid(f"the file is larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB", "attachment",
                      code="file_too_large")
    for magic, content_type, extension in SIGNATURES:
        if content.startswith(magic):
            return Attachment(safe_filename(upload.filename, extension, content_type), content_type, content)
    raise Invalid("only PDF, PNG or JPEG files are accepted", "attachment", code="file_type")
