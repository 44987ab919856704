"""The creditor is told, by e-mail through the outbox, when money it was counting on does not
come or goes back (refund, chargeback, failed direct debit): written in the same transaction
as the change it reports."""
from __future__ import annotations

import uuid
from email.utils import parseaddr

from flask import current_app, render_template
from flask_babel import force_locale

from ..domain.money import format_money
from ..extensions import db
from ..models import Creditor, Debtor, OutboxMessage, utcnow


def tell_creditor(kind: str, *, creditor_id: int, debtor_id: int, amount: int, currency: str, reference: str,
                  provider: str, numbers: list[str]) -> OutboxMessage:
    """kind: refund, chargeback or failed (a direct debit that failed, before or after confirmation)."""
    creditor = db.session.get(Creditor, creditor_id)
    debtor = db.session.get(Debtor, debtor_id)
    ctx = dict(creditor=creditor, debtor=debtor, kind=kind, reference=reference, provider=provider,
               numbers=sorted(numbers), amount=format_money(amount, currency, creditor.language),
               url=f"{current_app.config['PORTAL_BASE_URL']}/app/debtors/{debtor.ref}")
    with force_locale(creditor.language):
        text_body = render_template("email/creditor_alert.txt", **ctx)
        html_body = render_template("email/creditor_alert.html", **ctx)
    domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "relance.local"
    message = OutboxMessage(creditor_id=creditor.id, debtor_id=debtor.id, kind="creditor_alert", channel="email",
                            to_addr=creditor.email, subject=text_body.splitlines()[0][:300], text_body=text_body,
                            html_body=html_body, message_id_header=f"<{uuid.uuid4().hex}@{domain}>",
                            status="pending", next_attempt_at=utcnow())
    db.session.add(message)
    return message
