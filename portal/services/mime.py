"""A message as an e-mail (RFC 5322): the text, the HTML alternative with the EPC QR code as an
inline image beside it (multipart/related, mail clients block data: URIs and SVG), the PDF if any.

The bytes are built once, when the message is composed (OutboxMessage.raw); a message stored
without them is rebuilt from its columns, the QR code from its amount and reference."""
from __future__ import annotations

import re
import uuid
from email.encoders import encode_base64
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32, compat32
from email.utils import format_datetime, formataddr, parseaddr

from flask import current_app

from ..domain.giro import qr_png
from ..models import Creditor, OutboxMessage
from . import transfer


def qr_content_id(message: OutboxMessage) -> str:
    """The Content-ID of the message's QR image, without brackets: unique as its Message-ID is."""
    return "epc-qr." + message.message_id_header.strip("<>")


def qr_payload(message: OutboxMessage, creditor: Creditor) -> str | None:
    """The EPC QR text for what the message asks, or None: euros to an IBAN only."""
    return transfer.qr_payload(creditor, message.amount, message.currency, message.payment_reference)


def to_email(message: OutboxMessage, creditor: Creditor) -> Message:
    """The e-mail of an outbox message: text, HTML alternative (+ QR image) and the PDF if any.

    Built from the email.mime classes under compat32: EmailMessage under the default policy
    parses and refolds every header it is given and was ~2.5x the cost, for the same message
    once parsed (tests/integration/test_outbox_bytes.py reads it with the default policy)."""
    body = MIMEMultipart("alternative", boundary=_boundary(), _subparts=[_text(message.text_body, "plain")], policy=_COMPAT)
    html = _text(message.html_body, "html")
    cid = qr_content_id(message)
    payload = qr_payload(message, creditor) if f"cid:{cid}" in message.html_body else None
    if payload is not None:
        image = MIMEImage(qr_png(payload), "png", policy=_COMPAT)
        image["Content-Disposition"] = 'inline; filename="qr-code.png"'
        image["Content-ID"] = f"<{cid}>"
        html = MIMEMultipart("related", boundary=_boundary(), _subparts=[html, image], policy=_COMPAT)
    body.attach(html)
    email = body
    if message.attachment:
        pdf = MIMEApplication(message.attachment, "pdf", policy=_COMPAT)
        pdf.add_header("Content-Disposition", "attachment", filename=_param(message.attachment_name))
        email = MIMEMultipart("mixed", boundary=_boundary(), _subparts=[body, pdf], policy=_COMPAT)
    headers = (("From", _address(current_app.config["MAIL_FROM"])), ("To", _address(message.to_addr)),
               ("Reply-To", _address(creditor.email)), ("Subject", _words(message.subject)),
               ("Message-ID", message.message_id_header), ("Date", format_datetime(message.created_at)),
               ("Auto-Submitted", "auto-generated"), ("X-Relance-Kind", message.kind))
    # The headers first, as a reader expects them (MIMEMultipart set its own two already).
    own = email._headers  # noqa: SLF001
    email._headers = []  # noqa: SLF001
    for name, value in headers:
        if value is not None:
            if "\n" in str(value) or "\r" in str(value):  # a header of its own smuggled in (compat32 lets it)
                raise ValueError(f"{name}: header values may not contain linefeed or carriage return characters")
            email[name] = value
    email._headers += own  # noqa: SLF001
    return email


def smtp_bytes(message: OutboxMessage, creditor: Creditor) -> bytes:
    """RFC 5322 bytes with CRLF line ends, as they go over SMTP (before dot-stuffing)."""
    return to_email(message, creditor).as_bytes(policy=_SMTP)


class _Compat32Smtp(Compat32):
    """compat32 as SMTP wants it: CRLF, and a body line starting "From " left as it is. A header
    of printable ASCII that fits on its line is written as it is: compat32's Header class gives
    the same bytes (tests/unit/test_mime_headers.py) at many times the cost, ~20 headers a message."""

    def fold_binary(self, name, value):
        if (isinstance(value, str) and len(name) + 2 + len(value) <= (self.max_line_length or 78)
                and _PRINTABLE.fullmatch(value)):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_COMPAT = compat32
_SMTP = _Compat32Smtp(linesep="\r\n", mangle_from_=False)
#: longest line an 8bit body may have (RFC 5322); a longer one goes base64
_LINE_MAX = 998


def _boundary() -> str:
    """A multipart boundary of 122 random bits, which no body contains: left to draw one, the
    generator compiles a regular expression per part to check the body against its own."""
    return f"=_{uuid.uuid4().hex}"


def _text(text: str, subtype: str) -> MIMENonMultipart:
    """A UTF-8 text part; it ends with a line end, as EmailMessage.set_content made it."""
    data = text.encode("utf-8") if text.endswith("\n") else (text + "\n").encode("utf-8")
    part = MIMENonMultipart("text", subtype, policy=_COMPAT, charset="utf-8")
    if max(map(len, data.splitlines()), default=0) <= _LINE_MAX:
        part["Content-Transfer-Encoding"] = "8bit" if not data.isascii() else "7bit"
        part.set_payload(data.decode("ascii", "surrogateescape"))
    else:
        part.set_payload(data)
        encode_base64(part)
    return part


def _words(value: str | None) -> str | Header | None:
    """A free-text header: as it is in ASCII, else RFC 2047 encoded words."""
    return value if value is None or value.isascii() else Header(value, "utf-8")


def _address(value: str | None) -> str | None:
    """An address header: a non-ASCII display name as encoded words; a non-ASCII address (rare)
    in UTF-8 as it is, as the default policy wrote it (compat32 writes surrogates back as bytes)."""
    if value is None or value.isascii():
        return value
    display, addr = parseaddr(value)
    if addr and addr.isascii():
        return formataddr((display, addr), "utf-8")
    return value.encode("utf-8").decode("ascii", "surrogateescape")


def _param(value: str | None) -> str | tuple | None:
    return value if value is None or value.isascii() else ("utf-8", "", value)
