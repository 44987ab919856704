"""Statement of account: one debtor, a period, every currency the debtor has entries in.

Every query filters by the debtor id it is given (the portal passes the session's, the back
office the one `ledger.get_debtor` found among the creditor's own debtors).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from ..domain import statement as rules
from ..domain.ageing import BUCKETS, months_back
from ..domain.calendar import today_for
from ..extensions import db
from ..models import OPEN_STATUSES, Creditor, Debtor, Invoice, Payment, PaymentAllocation, PaymentReversal
from . import Invalid, NotFound, charge_items, documents, events, receivables
from .checks import ISO_DATE
from .transfer import TransferDetails, for_debtor as transfer_for_debtor

DEFAULT_MONTHS = 3
MAX_YEARS = 5


@dataclass
class StatementOfAccount:
    buckets = BUCKETS  # the ageing columns, in order
    debtor: Debtor
    creditor: Creditor
    start: date
    end: date
    today: date
    #: (currency, statement): the creditor's currency first, then any other the debtor has entries in
    statements: list[tuple[str, rules.Statement]] = field(default_factory=list)
    #: the period as typed, to fill the form again
    raw: dict[str, str] = field(default_factory=dict)
    #: a refused period: the reason in the reader's language, and the field; no statements then
    error: str | None = None
    error_field: str | None = None
    #: the PDF, from `pdf()`
    content: bytes | None = None
    #: pay by transfer: the debtor's reference (a statement asks for the whole account) and a QR
    #: code for the open balance in euros today, the disputed invoices (and their charges) left out
    transfer: TransferDetails | None = None
    #: some open items are left out of the transfer's amount: disputed, so not asked for
    disputed_left_out: bool = False

    @property
    def filename(self) -> str:
        return f"statement-{_safe(self.debtor.ref)}-{self.end.isoformat()}.pdf"


def _safe(ref: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", ref).strip("-") or "debtor"


# --- the period -------------------------------------------------------------------------------

def _parse(raw, field: str) -> date | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str) or not ISO_DATE.fullmatch(raw.strip()):
        raise Invalid(f"{field} must be a date YYYY-MM-DD", field, code="bad_date")
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise Invalid(f"{field} must be a date YYYY-MM-DD", field, code="bad_date") from None


def period(debtor_id: int, raw_from, raw_to, today: date) -> tuple[date, date]:
    """The period asked for, checked: ISO dates, from <= to <= today, five years at most.
    Without `to`: today. Without `from`: the first of the month three months before `to`, or
    earlier (five years at most) when an item open today is older: an open invoice, a payment
    that paid part of one or still holds a credit. So the default statement shows every line
    behind the current open balance."""
    start, end = _parse(raw_from, "from"), _parse(raw_to, "to")
    end = end or today
    if end > today:
        raise Invalid("to is in the future", "to", code="future")
    if start is None:
        start = months_back(end, DEFAULT_MONTHS).replace(day=1)
        oldest = _oldest_open_item(debtor_id, end)
        if oldest is not None and oldest < start:
            start = max(oldest, months_back(end, 12 * MAX_YEARS))
    if start > end:
        raise Invalid("from is after to", "from", code="order")
    if start < months_back(end, 12 * MAX_YEARS):
        raise Invalid(f"a statement covers {MAX_YEARS} years at most", "from", code="too_long")
    return start, end


def _oldest_open_item(debtor_id: int, end: date) -> date | None:
    invoice = db.session.scalar(
        select(Invoice.issue_date).where(Invoice.debtor_id == debtor_id, Invoice.status.in_(OPEN_STATUSES),
                                         Invoice.issue_date <= end)
        .order_by(Invoice.issue_date).limit(1))
    allocated = (select(PaymentAllocation.id).join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
                 .where(PaymentAllocation.payment_id == Payment.id, Invoice.status.in_(OPEN_STATUSES)).exists())
    still_allocated = (select(func.coalesce(func.sum(PaymentAllocation.amount - PaymentAllocation.reversed_amount), 0))
                       .where(PaymentAllocation.payment_id == Payment.id).scalar_subquery())
    credit_left = Payment.amount - Payment.reversed_amount - still_allocated > 0
    payment = db.session.scalar(
        select(Payment.received_on).where(Payment.debtor_id == debtor_id, Payment.received_on <= end,
                                          or_(allocated, credit_left))
        .order_by(Payment.received_on).limit(1))
    found = [d for d in (invoice, payment) if d is not None]
    return min(found) if found else None


def describe(error: Invalid) -> str:
    """The refusal in the reader's language, for the portal and the back office."""
    return {"bad_date": _("Enter the dates as YYYY-MM-DD."),
            "future": _("The end of the period cannot be later than today."),
            "order": _("The start of the period must be on or before its end."),
            "too_long": _("A statement covers %(years)d years at most.", years=MAX_YEARS)}.get(error.code, error.message)


# --- the statement -----------------------------------------------------------------------------

def _debtor(debtor_id: int) -> tuple[Debtor, Creditor]:
    row = db.session.execute(select(Debtor, Creditor).join(Creditor, Creditor.id == Debtor.creditor_id)
                             .where(Debtor.id == debtor_id)).first()
    if row is None:
        raise NotFound("no such debtor")
    return row[0], row[1]


PAYMENT_KIND = {"credit_note": "credit", "discount": "discount"}  # discount: discounts.PROVIDER


def for_debtor(debtor_id: int, raw_from=None, raw_to=None) -> StatementOfAccount:
    """The statement for the period asked for; a refused period comes back with `error` set."""
    debtor, creditor = _debtor(debtor_id)
    today = today_for(creditor)
    raw = {k: v[:20] if isinstance(v, str) else "" for k, v in (("from", raw_from), ("to", raw_to))}
    try:
        start, end = period(debtor_id, raw_from, raw_to, today)
    except Invalid as e:
        return StatementOfAccount(debtor, creditor, today, today, today, raw=raw, error=describe(e),
                                  error_field=e.field)
    soa = StatementOfAccount(debtor, creditor, start, end, today, raw=raw)
    soa.statements = _statements(debtor_id, creditor, start, end)
    soa.transfer, soa.disputed_left_out = _transfer(creditor, debtor)
    return soa


def _transfer(creditor: Creditor, debtor: Debtor) -> tuple[TransferDetails, bool]:
    """The account's transfer details, asking for the open balance less what is disputed: an
    invoice under dispute is not asked for (dunning waits for it too), nor the charges claimed on it."""
    items = receivables.open_items(debtor.id).invoices
    disputed = {i.id for i in items if i.disputed}
    balances: dict[str, int] = {}
    for i in items:
        if i.id not in disputed and i.charged_invoice_id not in disputed:
            balances[i.currency] = balances.get(i.currency, 0) + i.balance
    return transfer_for_debtor(creditor, debtor, balances), bool(disputed)


def _statements(debtor_id: int, creditor: Creditor, start: date, end: date) -> list[tuple[str, rules.Statement]]:
    tz = ZoneInfo(creditor.timezone)
    invoices = db.session.execute(
        select(Invoice.id, Invoice.number, Invoice.issue_date, Invoice.due_date, Invoice.amount, Invoice.currency,
               Invoice.kind, Invoice.charged_invoice_id)
        .where(Invoice.debtor_id == debtor_id, Invoice.status != "cancelled", Invoice.issue_date <= end)
        .order_by(Invoice.issue_date, Invoice.id)).all()
    payments = db.session.execute(
        select(Payment.id, Payment.provider, Payment.reference, Payment.amount, Payment.currency, Payment.received_on)
        .where(Payment.debtor_id == debtor_id, Payment.received_on <= end)
        .order_by(Payment.received_on, Payment.id)).all()
    payment_ids = [p.id for p in payments]
    allocations: dict[int, list[tuple[int, int]]] = {}
    reversals = []
    if payment_ids:
        for payment_id, invoice_id, amount in db.session.execute(
                select(PaymentAllocation.payment_id, PaymentAllocation.invoice_id, PaymentAllocation.amount)
                .join(Payment, Payment.id == PaymentAllocation.payment_id)
                .where(Payment.debtor_id == debtor_id, PaymentAllocation.payment_id.in_(payment_ids))
                .order_by(PaymentAllocation.id)):
            allocations.setdefault(payment_id, []).append((invoice_id, amount))
        reversals = db.session.execute(
            select(PaymentReversal.payment_id, PaymentReversal.kind, PaymentReversal.amount, PaymentReversal.created_at)
            .join(Payment, Payment.id == PaymentReversal.payment_id)
            .where(Payment.debtor_id == debtor_id, PaymentReversal.payment_id.in_(payment_ids))
            .order_by(PaymentReversal.created_at, PaymentReversal.id)).all()

    by_payment = {p.id: p for p in payments}
    entries: dict[str, list[rules.Entry]] = {}
    for inv in invoices:  # a charges item is labelled with the invoice it was claimed on (charge_items)
        charges = inv.kind == charge_items.KIND
        entries.setdefault(inv.currency, []).append(
            rules.Entry(inv.issue_date, inv.kind, charge_items.charged_number(inv) if charges else inv.number,
                        debit=inv.amount))
    for p in payments:
        entries.setdefault(p.currency, []).append(
            rules.Entry(p.received_on, PAYMENT_KIND.get(p.provider, "payment"), p.reference, credit=p.amount,
                        note=p.provider))
    reversed_by_end: dict[int, int] = {}
    for r in reversals:
        day = r.created_at.astimezone(tz).date()
        if day > end:
            continue
        p = by_payment[r.payment_id]
        reversed_by_end[p.id] = reversed_by_end.get(p.id, 0) + r.amount
        entries.setdefault(p.currency, []).append(rules.Entry(day, r.kind, p.reference, debit=r.amount, note=p.provider))

    currencies = sorted(entries, key=lambda c: (c != creditor.currency, c)) or [creditor.currency]
    statements = []
    for currency in currencies:
        open_items = rules.outstanding_at(
            [(i.id, i.due_date, i.amount) for i in invoices if i.currency == currency],
            [(p.amount, allocations.get(p.id, []), reversed_by_end.get(p.id, 0))
             for p in payments if p.currency == currency])
        statements.append((currency, rules.build(entries.get(currency, []), start, end, open_items)))
    return statements


def pdf_html(soa: StatementOfAccount) -> str:
    """The PDF's HTML, in the debtor's language whoever asks (the back office too)."""
    with force_locale(soa.debtor.language):
        return render_template("pdf/statement.html", soa=soa, debtor=soa.debtor, creditor=soa.creditor)


def render_pdf(soa: StatementOfAccount) -> bytes:
    return documents.html_pdf(pdf_html(soa))


def pdf(debtor_id: int, raw_from=None, raw_to=None, *, actor: str, user: str | None = None) -> StatementOfAccount:
    """The statement as a PDF (`content`) in the debtor's language, its download in the event
    log; a refused period comes back with `error` set, nothing rendered nor recorded."""
    soa = for_debtor(debtor_id, raw_from, raw_to)
    if soa.error:
        return soa
    soa.content = render_pdf(soa)
    data = {"from": soa.start.isoformat(), "to": soa.end.isoformat()}
    if user:
        data["user"] = user
    events.record("statement.downloaded", creditor_id=soa.creditor.id, debtor_id=soa.debtor.id, actor=actor, **data)
    db.session.commit()
    return soa
