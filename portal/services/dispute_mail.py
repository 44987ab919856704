"""What the debtor is told by e-mail about its dispute (a reply, the resolution), in its
language, and the names of the reasons and resolutions that pages and e-mails show."""
from __future__ import annotations

import uuid
from email.utils import parseaddr

from flask import current_app, render_template
from flask_babel import force_locale, lazy_gettext

from ..domain.money import format_money
from ..extensions import db
from ..models import OPEN_STATUSES, Creditor, Debtor, Dispute, Invoice, OutboxMessage, utcnow
from . import events, links

#: names of the codes, in the reader's language (pages and e-mails)
REASON_LABELS = {"not_received": lazy_gettext("Invoice not received"),
                 "wrong_amount": lazy_gettext("Wrong amount"),
                 "goods_or_service": lazy_gettext("Problem with the goods or service"),
                 "already_paid": lazy_gettext("Already paid"),
                 "other": lazy_gettext("Other")}
RESOLUTION_LABELS = {"credit_note": lazy_gettext("Accepted: credit note"),
                     "amount_corrected": lazy_gettext("Accepted: amount corrected"),
                     "rejected": lazy_gettext("Rejected")}


def email_debtor(creditor: Creditor, debtor: Debtor, invoice: Invoice, dispute: Dispute, kind: str, *,
                  body: str | None, with_attachment: bool = False) -> OutboxMessage | None:
    """A reply or the resolution, to the debtor in its language, with a fresh portal link;
    written in the caller's transaction, sent by the outbox after commit."""
    if not debtor.email:
        return None
    still_open = invoice.status in OPEN_STATUSES
    # A resolution that leaves something to pay lands on the portal with that invoice preselected;
    # a reply, or a resolution that closed the invoice, on the dispute's thread.
    pay = kind == "resolved" and still_open
    issued = links.issue(debtor, issued_by="dispute", commit=False, invoice_numbers=[invoice.number] if pay else None,
                         dispute_id=None if pay else dispute.id)
    ctx = dict(creditor=creditor, debtor=debtor, invoice=invoice, dispute=dispute, kind=kind, body=body,
               url=issued.url, with_attachment=with_attachment, still_open=still_open,
               balance=format_money(invoice.balance, invoice.currency, debtor.language),
               adjustment=(format_money(abs(dispute.adjustment), invoice.currency, debtor.language)
                           if dispute.adjustment is not None else None))
    with force_locale(debtor.language):
        ctx["reason"] = str(REASON_LABELS[dispute.reason])
        ctx["resolution"] = str(RESOLUTION_LABELS[dispute.resolution]) if dispute.resolution else None
        text_body = render_template("email/dispute_reply.txt", **ctx)
        html_body = render_template("email/dispute_reply.html", **ctx)
    domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "relance.local"
    message = OutboxMessage(creditor_id=creditor.id, debtor_id=debtor.id, kind="dispute_reply", channel="email",
                            to_addr=debtor.email, subject=" ".join(text_body.splitlines()[0].split())[:300],
                            text_body=text_body, html_body=html_body,
                            message_id_header=f"<{uuid.uuid4().hex}@{domain}>", status="pending",
                            next_attempt_at=utcnow())
    db.session.add(message)
    db.session.flush()
    events.record("message.planned", creditor_id=creditor.id, debtor_id=debtor.id, invoice_id=invoice.id,
                  actor="system", message_id=message.id, kind="dispute_reply", channel="email",
                  dispute_id=dispute.id, invoices=[invoice.number])
    return message
