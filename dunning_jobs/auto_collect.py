"""Automatic collection: on its due date, each open invoice of a debtor whom the creditor
switched to automatic collection is collected through the debtor's mandate — once per
invoice: after a failed direct debit, dunning takes over and the debtor pays another way.
Charges items claimed by a message are open items due that day: collected too, after the principal."""
from __future__ import annotations

from datetime import date

from flask import current_app
from sqlalchemy import exists, select

from portal import gateways
from portal.extensions import db
from portal.models import (MANDATE_USABLE, OPEN_STATUSES, Creditor, Debtor, Invoice, Mandate, PaymentAttempt,
                           PaymentAttemptLine)
from portal.services import ServiceError, charge_items, payments


def collect_due(creditor: Creditor, day: date) -> int:
    """Request one direct debit per debtor for its invoices due by `day`; returns how many."""
    if gateways.direct_debit() is None:
        return 0
    tried = exists().where(PaymentAttemptLine.invoice_id == Invoice.id,
                           PaymentAttempt.id == PaymentAttemptLine.attempt_id,
                           PaymentAttempt.provider == "gocardless")
    has_mandate = exists().where(Mandate.debtor_id == Debtor.id,
                                 Mandate.status.in_(MANDATE_USABLE))
    charged = Invoice.__table__.alias("charged")  # charges wait while the invoice they were claimed on is disputed
    charged_disputed = exists().where(charged.c.id == Invoice.charged_invoice_id, charged.c.disputed.is_(True))
    rows = db.session.execute(
        select(Invoice.debtor_id, Invoice.number).join(Debtor, Debtor.id == Invoice.debtor_id)
        .where(Invoice.creditor_id == creditor.id, Debtor.auto_collect.is_(True), has_mandate,
               Invoice.status.in_(OPEN_STATUSES), Invoice.disputed.is_(False), Invoice.currency == "EUR",
               Invoice.due_date <= day, ~tried, ~charged_disputed)
        .order_by(Invoice.debtor_id, charge_items.PRINCIPAL_FIRST, Invoice.due_date, Invoice.id)).all()
    db.session.commit()
    by_debtor: dict[int, list[str]] = {}
    for debtor_id, number in rows:
        by_debtor.setdefault(debtor_id, []).append(number)
    requested = 0
    for debtor_id, numbers in by_debtor.items():
        for start in range(0, len(numbers), payments.MAX_INVOICES):
            try:
                payments.collect(debtor_id, numbers[start:start + payments.MAX_INVOICES], initiated_by="system")
                requested += 1
            except ServiceError as e:  # provider down, mandate just cancelled: the next day retries
                db.session.rollback()
                current_app.logger.warning("automatic collection for debtor %s failed: %s", debtor_id, e.message)
    return requested
