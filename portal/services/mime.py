"""A message as an e-mail (RFC 5322): the text, the HTML alternative with the EPC QR code as an
inline image beside it (multipart/related, mail clients block data: URIs and SVG), the PDF if any.

The bytes are built once, when the message is composed (OutboxMessage.raw); a message stored
without them is rebuilt from its columns, the QR code from its amount and reference."""
from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime

from flask import current_app

from ..domain.giro import qr_png
from ..domain.references import epc_qr_payload
from ..models import Creditor, OutboxMessage


def qr_content_id(message: OutboxMessage) -> str:
    """The Content-ID of the message's QR image, without brackets: unique as its Message-ID is."""
    return "epc-qr." + message.message_id_header.strip("<>")


def qr_payload(message: OutboxMessage, creditor: Creditor) -> str | None:
    """The EPC QR text for what the message asks, or None: euros to an IBAN only."""
    if not (message.amount and message.amount > 0 and message.currency == "EUR" and creditor.iban
            and message.payment_reference):
        return None
    return epc_qr_payload(creditor.legal_name or creditor.name, creditor.iban, creditor.bic, message.amount,
                          message.currency, message.payment_reference)


def to_email(message: OutboxMessage, creditor: Creditor) -> EmailMessage:
    """The e-mail of an outbox message: text, HTML alternative (+ QR image) and the PDF if any."""
    email = EmailMessage()
    email["From"] = current_app.config["MAIL_FROM"]
    email["To"] = message.to_addr
    email["Reply-To"] = creditor.email
    email["Subject"] = message.subject
    email["Message-ID"] = message.message_id_header
    email["Date"] = format_datetime(message.created_at)
    email["Auto-Submitted"] = "auto-generated"
    email["X-Relance-Kind"] = message.kind
    email.set_content(message.text_body)
    email.add_alternative(message.html_body, subtype="html")
    cid = qr_content_id(message)
    payload = qr_payload(message, creditor) if f"cid:{cid}" in message.html_body else None
    if payload is not None:
        html_part = email.get_body(("html",))
        html_part.add_related(qr_png(payload), maintype="image", subtype="png", cid=f"<{cid}>",
                              filename="qr-code.png", disposition="inline")
    if message.attachment:
        email.add_attachment(message.attachment, maintype="application", subtype="pdf",
                             filename=message.attachment_name)
    return email


def smtp_bytes(message: OutboxMessage, creditor: Creditor) -> bytes:
    """RFC 5322 bytes with CRLF line ends, as they go over SMTP (before dot-stuffing)."""
    return to_email(message, creditor).as_bytes(policy=SMTP_POLICY)
