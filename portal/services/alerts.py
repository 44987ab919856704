"""The creditor is told, by e-mail through the outbox, when money it was counting on goes back
(refund, chargeback, failed direct debit): written in the same transaction as the reversal."""
from __future__ import annotations

import uuid
from email.utils import parseaddr

from flask import current_app, render_template
from flask_babel import force_locale

from ..domain.money import format_money
from ..extensions import db
from ..models import Creditor, Debtor, Invoice, OutboxMessage, Payment, PaymentAllocation, PaymentReversal, utcnow
from sqlalchemy import select


def tell_creditor(payment: Payment, reversal: PaymentReversal) -> OutboxMessage:
    creditor = db.session.get(Creditor, payment.creditor_id)
    debtor = db.session.get(Debtor, payment.debtor_id)
    numbers = db.session.scalars(select(Invoice.number).join(PaymentAllocation, PaymentAllocation.invoice_id == Invoice.id)
                                 .where(PaymentAllocation.payment_id == payment.id).order_by(Invoice.number)).all()
    ctx = dict(creditor=creditor, debtor=debtor, payment=payment, reversal=reversal, numbers=numbers,
               amount=format_money(reversal.amount, payment.currency, creditor.language),
               url=f"{current_app.config['PORTAL_BASE_URL']}/app/debtors/{debtor.ref}")
    with force_locale(creditor.language):
        text_body = render_template("email/creditor_alert.txt", **ctx)
        html_body = render_template("email/creditor_alert.html", **ctx)
    subject = text_body.splitlines()[0][:300]
    domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "relance.local"
    message = OutboxMessage(creditor_id=creditor.id, debtor_id=debtor.id, kind="creditor_alert", channel="email",
                            to_addr=creditor.email, subject=subject, text_body=text_body, html_body=html_body,
                            message_id_header=f"<{uuid.uuid4().hex}@{domain}>", status="pending",
                            next_attempt_at=utcnow())
    db.session.add(message)
    return message
