"""Telling the creditor's users, by e-mail through the outbox, what needs them: money that did
not come or went back (refund, chargeback, failed direct debit), money that came twice (kept as
credit, to refund), a new dispute, a broken promise. Written in the same transaction as the change it reports.

Each creditor user chooses (CreditorUser.notify) between "immediate" (one e-mail per notice,
written here) and "digest" (one e-mail a day listing them, built from the event log by the
daily digest job), so nothing is recorded twice.
"""
from __future__ import annotations

import uuid
from email.utils import parseaddr

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import or_, select

from ..domain.money import format_money
from ..extensions import db
from ..models import Creditor, CreditorMembership, CreditorUser, Debtor, OutboxMessage, utcnow

#: what a notice can be about; the template words each one
KINDS = ("refund", "chargeback", "failed", "dispute", "dispute_reply", "promise_broken", "overpaid")


def notify(kind: str, *, creditor_id: int, debtor_id: int, numbers: list[str], amount: int | None = None,
           currency: str | None = None, reference: str | None = None, provider: str | None = None,
           detail: str | None = None) -> list[OutboxMessage]:
    """One e-mail now to each user of the creditor who wants notices immediately."""
    if kind not in KINDS:
        raise ValueError(kind)
    creditor = db.session.get(Creditor, creditor_id)
    debtor = db.session.get(Debtor, debtor_id)
    # the creditor's own users and those of its group who may switch to it
    members = select(CreditorMembership.user_id).where(CreditorMembership.creditor_id == creditor_id)
    users = db.session.scalars(select(CreditorUser).where(or_(CreditorUser.creditor_id == creditor_id,
                                                              CreditorUser.id.in_(members)),
                                                          CreditorUser.notify == "immediate")
                               .order_by(CreditorUser.id)).all()
    if not users:
        return []
    ctx = dict(creditor=creditor, debtor=debtor, kind=kind, reference=reference, provider=provider,
               numbers=sorted(numbers), detail=detail,
               amount=format_money(amount, currency, creditor.language) if amount is not None else None,
               url=f"{current_app.config['PORTAL_BASE_URL']}/app/debtors/{debtor.ref}")
    with force_locale(creditor.language):
        text_body = render_template("email/creditor_alert.txt", **ctx)
        html_body = render_template("email/creditor_alert.html", **ctx)
    domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "relance.local"
    messages = []
    for user in users:
        message = OutboxMessage(creditor_id=creditor.id, debtor_id=debtor.id, kind="creditor_alert",
                                channel="email", to_addr=user.email, subject=text_body.splitlines()[0][:300],
                                text_body=text_body, html_body=html_body,
                                message_id_header=f"<{uuid.uuid4().hex}@{domain}>", status="pending",
                                next_attempt_at=utcnow())
        db.session.add(message)
        messages.append(message)
    return messages
