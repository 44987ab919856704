"""What a debtor sees: every query filters by the session's debtor id, here and nowhere else."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import bindparam, func, select

from ..domain import discount
from ..domain.calendar import today_for, today_in
from ..domain.references import debtor_reference, invoice_reference
from ..extensions import db
from ..models import (OPEN_STATUSES, Creditor, Debtor, Dispute, Event, Invoice, Mandate, Payment, PaymentAttempt,
                      PaymentAttemptLine, PaymentPromise, utcnow)
from . import NotFound, charge_items, links, mandates
from .checks import NUMBER
from .transfer import TransferDetails, details as transfer_details
from .ledger import debtor_credit


@dataclass
class AccountLine:
    """An invoice as a line of the debtor's account page: open item or settled."""
    invoice: Invoice
    days_overdue: int
    #: what settles it if paid today: the balance less an early-payment discount still available
    due_now: int = 0

    @property
    def discounted(self) -> bool:
        """An early-payment discount still available today lowers what is due now."""
        return self.due_now < self.invoice.balance


@dataclass
class Account:
    debtor: Debtor
    creditor: Creditor
    today: date
    open_items: list[AccountLine]
    settled: list[AccountLine]
    payments: list[Payment]
    #: (event, the name of its invoice or charges item for people, the date it shows)
    history: list[tuple[Event, str | None, date | datetime]]
    credit: dict[str, int]
    totals: dict[str, dict[str, int]] = field(default_factory=dict)  # currency -> {due, overdue}
    #: ids of open invoices with a payment on its way (card checkout settling, direct debit submitted)
    in_flight: set[int] = field(default_factory=set)
    mandate: Mandate | None = None
    #: open invoice id -> its open dispute's id / its live promise's date
    disputes: dict[int, int] = field(default_factory=dict)
    promises: dict[int, date] = field(default_factory=dict)
    #: open invoice ids that would take a promise to pay now (`promise_refusal` is None)
    promisable: set[int] = field(default_factory=set)

    @property
    def transfer(self) -> TransferDetails:
        """Pay by transfer: the account asks for several invoices, so the debtor's reference,
        and what settles them today (early-payment discounts still available deducted)."""
        return transfer_details(self.creditor, debtor_reference(self.debtor.id),
                                self.totals.get("EUR", {}).get("due_now", 0), "EUR")

    @property
    def payable(self) -> list[AccountLine]:
        """The open items the pay bar can take: nothing on its way already."""
        return [line for line in self.open_items if line.invoice.id not in self.in_flight]

    def default_ticks(self) -> set[str]:
        """Ticked when the visit names none: all the debtor can pay but what they dispute."""
        return {line.invoice.number for line in self.payable
                if not (line.invoice.disputed or line.invoice.id in self.disputes)}

    def ticked_lines(self, numbers) -> list[AccountLine]:
        numbers = set(numbers)
        return [line for line in self.payable if line.invoice.number in numbers]

    def transfer_for(self, numbers) -> TransferDetails | None:
        """Pay the ticked items by transfer (CONTRACT §7): one invoice asks with its own reference,
        several with the debtor's; the amount is what settles them today. None: nothing ticked."""
        lines = self.ticked_lines(numbers)
        if not lines:
            return None
        currencies = {line.invoice.currency for line in lines}
        # Several currencies: the euro items take the code, the others are paid apart.
        currency = currencies.pop() if len(currencies) == 1 else "EUR"
        amount = sum(line.due_now for line in lines if line.invoice.currency == currency)
        if len(lines) == 1:
            inv = lines[0].invoice
            return transfer_details(self.creditor, invoice_reference(inv.id), amount, currency, inv.number)
        return transfer_details(self.creditor, debtor_reference(self.debtor.id), amount, currency)


def _lines(debtor_id: int, statuses, today: date, limit: int | None = None) -> list[AccountLine]:
    q = select(Invoice).where(Invoice.debtor_id == debtor_id, Invoice.status.in_(statuses))
    q = q.order_by(Invoice.due_date, Invoice.id) if limit is None else q.order_by(Invoice.updated_at.desc()).limit(limit)
    return [AccountLine(inv, max(0, (today - inv.due_date).days)) for inv in db.session.scalars(q)]


def _in_flight(invoice_id):
    """Whether a payment is on its way for that invoice: a card checkout settling, a direct debit submitted."""
    return (select(PaymentAttemptLine.id)
            .join(PaymentAttempt, PaymentAttempt.id == PaymentAttemptLine.attempt_id)
            .where(PaymentAttemptLine.invoice_id == invoice_id, PaymentAttempt.status == "processing")
            .exists())


def payment_in_flight(invoice_id: int) -> bool:
    return bool(db.session.scalar(select(_in_flight(invoice_id))))


def promise_refusal(invoice: Invoice, *, dispute_open: bool, promised: bool, in_flight: bool) -> str | None:
    """Why a promise to pay on this invoice would be refused (the Conflict's code), or None. The
    one rule behind both the portal's "Promise" button and `promises.offer`."""
    if invoice.status not in OPEN_STATUSES:
        return "not_open"
    if invoice.disputed or dispute_open:
        return "disputed"
    if in_flight:
        return "payment_in_flight"
    if promised:
        return "already_promised"
    return None


def _open_items(debtor_id: int, today: date) -> tuple[list[AccountLine], set[int], dict[int, int], dict[int, date]]:
    """The open invoices, oldest due first, with in the same query what each row shows beside
    them: a payment in flight, the open dispute's id, the live promise's date."""
    in_flight = _in_flight(Invoice.id)
    dispute = (select(Dispute.id).where(Dispute.invoice_id == Invoice.id, Dispute.status == "open")
               .limit(1).scalar_subquery())
    promise = (select(PaymentPromise.promised_date)
               .where(PaymentPromise.invoice_id == Invoice.id, PaymentPromise.status == "live")
               .limit(1).scalar_subquery())
    rows = db.session.execute(select(Invoice, in_flight, dispute, promise)
                              .where(Invoice.debtor_id == debtor_id, Invoice.status.in_(OPEN_STATUSES))
                              .order_by(Invoice.due_date, Invoice.id)).all()
    lines = [AccountLine(inv, max(0, (today - inv.due_date).days),
                         discount.due_now(inv.amount, inv.balance, inv.discount_percent, inv.discount_until, today))
             for inv, *_ in rows]
    return (lines, {inv.id for inv, busy, _, _ in rows if busy},
            {inv.id: d for inv, _, d, _ in rows if d is not None},
            {inv.id: p for inv, _, _, p in rows if p is not None})


def _version_query():
    debtor = bindparam("debtor_id")
    return (select(Creditor.timezone,
                   select(func.max(Event.id)).where(Event.debtor_id == debtor).scalar_subquery(),
                   select(func.max(Event.id)).where(Event.creditor_id == Creditor.id, Event.debtor_id.is_(None))
                   .correlate(Creditor).scalar_subquery())
            .join(Debtor, Debtor.creditor_id == Creditor.id).where(Debtor.id == debtor))


def _version_of(row) -> tuple[int, date]:
    tz, own, general = row
    return max(own or 0, general or 0), today_in(tz)


#: Built once (every portal request asks it, and building the statement cost more than running
#: it): the account's version and the session's check (links.SESSION_ALIVE) in one round trip.
_LIVE_VERSION = _version_query().where(links.SESSION_ALIVE.exists())


def live_version(session_id: int, debtor_id: int) -> tuple[int, date] | None:
    """(newest event id on this account or its creditor, the debtor's local date today): what the
    account page depends on, since every state change writes an event; given only while the portal
    session `session_id` stands for that debtor, else None (signed out, link revoked or expired)."""
    if not isinstance(session_id, int) or not isinstance(debtor_id, int):
        return None
    # Outside the request's ORM session, without a transaction: a page served from the cache then
    # costs one statement, not BEGIN, the statement and ROLLBACK (each a round trip).
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        row = conn.execute(_LIVE_VERSION, {"session_id": session_id, "debtor_id": debtor_id, "now": utcnow()}).first()
    return None if row is None else _version_of(row)


def load(debtor_id: int) -> Account:
    row = db.session.execute(select(Debtor, Creditor).join(Creditor, Creditor.id == Debtor.creditor_id)
                             .where(Debtor.id == debtor_id)).first()
    if row is None:
        raise NotFound("no such debtor")
    debtor, creditor = row
    today = today_for(creditor)
    open_items, in_flight, disputes, promises = _open_items(debtor_id, today)
    settled = _lines(debtor_id, ("paid", "cancelled"), today, limit=20)
    payments = list(db.session.scalars(select(Payment).where(Payment.debtor_id == debtor_id)
                                       .order_by(Payment.received_on.desc(), Payment.id.desc()).limit(20)))
    # An invoice is dated as issued, not as imported.
    history = [(e, inv and charge_items.label(inv),
                inv.issue_date if inv is not None and e.type == "invoice.created" else e.at)
               for e, inv in db.session.execute(
        select(Event, Invoice).outerjoin(Invoice, Invoice.id == Event.invoice_id)
        .where(Event.debtor_id == debtor_id, Event.type.in_(HISTORY_TYPES))
        .order_by(Event.id.desc()).limit(30)).all()]
    account = Account(debtor, creditor, today, open_items, settled, payments, history, debtor_credit(debtor_id))
    account.in_flight, account.disputes, account.promises = in_flight, disputes, promises
    account.mandate = mandates.current(debtor_id)
    account.promisable = {line.invoice.id for line in open_items if promise_refusal(
        line.invoice, dispute_open=line.invoice.id in disputes, promised=line.invoice.id in promises,
        in_flight=line.invoice.id in in_flight) is None}
    for line in open_items:
        t = account.totals.setdefault(line.invoice.currency, {"due": 0, "overdue": 0, "due_now": 0})
        t["due"] += line.invoice.balance
        t["due_now"] += line.due_now
        if line.days_overdue > 0:
            t["overdue"] += line.invoice.balance
    return account


# What a debtor's own history shows: things that happened to their account, not internal bookkeeping.
# Page views (portal.opened) stay in the creditor's feed and GET /events.
HISTORY_TYPES = ("invoice.created", "payment.received", "invoice.paid", "document.downloaded",
                 "reminder.sent", "dispute.opened", "dispute.resolved", "promise.made", "mandate.active",
                 "payment.processing", "payment.failed", "payment.refunded", "payment.charged_back", "payment.reversed",
                 "invoice.reopened", "mandate.pending_submission", "mandate.cancelled", "mandate.failed",
                 "dispute.replied", "promise.kept", "promise.broken", "charges.claimed", "charges.waived")


def invoice_for(debtor_id: int, number: str) -> Invoice:
    if not isinstance(number, str) or not NUMBER.fullmatch(number):  # no stored number is like this; PostgreSQL refuses NUL
        raise NotFound("no such invoice")
    invoice = db.session.scalar(select(Invoice).where(Invoice.debtor_id == debtor_id, Invoice.number == number))
    if invoice is None:
        raise NotFound("no such invoice")
    return invoice
