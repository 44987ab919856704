"""Demo data: a creditor in the middle of its month. Twenty debtors and ~100 invoices, imported
five weeks ago, then every day since replayed through the real code: new invoices on their issue
day, bank transfers on the day they came in, the dunning day (plan, compose, send), the
creditor's decisions on formal notices; a dispute and a promise from the portal's own services.
What the back office shows (dashboard, approvals, outbox) is what that code wrote.

The messages stay in the outbox (the mailbox mode of `SMTP_URL` unset, forced during the replay):
never sent to the example addresses, even where an SMTP server is configured.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select

from ..domain.calendar import day_start, today_in
from ..domain.money import to_decimal_string
from ..extensions import db
from ..models import Creditor, CreditorUser, Debtor, Invoice
from ..models.base import replaying
from . import disputes, ledger, promises, reminders, tenants

EMAIL = "demo@relance.test"
PASSWORD = "relance-demo"
TIMEZONE = "Europe/Paris"
HISTORY_DAYS = 35  # the ledger was imported five weeks ago
COMPANIES = ["Boulangerie Martin", "Garage Dupuis", "Cabinet Leroy", "Hôtel des Voyageurs", "Pharmacie Centrale",
             "Transports Girard", "Menuiserie Roux", "Studio Lumière", "Ferme du Vallon", "Librairie Papyrus",
             "Clinique Vétérinaire Saint-Roch", "Imprimerie Moderne", "Café de la Gare", "Atelier Vélo Sud",
             "Brasserie Lambert", "Green Office Ltd", "Nordic Supplies AB", "Fromagerie Bernard",
             "Mairie de Saint-Aubin", "Société Bâtir Ouest"]

#: runs one creditor's dunning day (plan, compose, send): dunning_jobs' own, passed in by the CLI
#: (services sit below the jobs and do not import them)
RunDay = Callable[[Creditor, date], object]


@dataclass
class _Invoice:
    ref: str
    number: str
    issue: date
    due: date
    amount: str
    paid_on: date | None = None  # a transfer that day: all of it, or a third when `part`
    part: bool = False


def existing() -> Creditor | None:
    user = db.session.scalar(select(CreditorUser).where(CreditorUser.email == EMAIL))
    return db.session.get(Creditor, user.creditor_id) if user else None


def seed(run_day: RunDay | None = None) -> tuple[Creditor, bool]:
    """Create the demo creditor once; return it and whether it was created now. With `run_day`,
    its past five weeks are replayed day by day (without, only the ledger as of today)."""
    creditor = existing()
    if creditor is not None:
        return creditor, False
    today = today_in(TIMEZONE)
    start = today - timedelta(days=HISTORY_DAYS) if run_day else today
    smtp_url = current_app.config["SMTP_URL"]
    current_app.config["SMTP_URL"] = None  # the outbox is the mailbox: see the module's docstring
    try:
        with replaying(_moment(start, today)):
            creditor = _creditor()
        book = _ledger(today)
        for day in (start + timedelta(days=n) for n in range((today - start).days + 1)):
            with replaying(_moment(day, today)):
                _morning(creditor, book, day, start, today)
                if run_day:
                    _decide_formal_notices(creditor, day)
                    run_day(creditor, day)
        if run_day:
            with replaying(_moment(today, today)):
                _decide_formal_notices(creditor, today)
                run_day(creditor, today)  # sends what was just approved; plans nothing new
    finally:
        current_app.config["SMTP_URL"] = smtp_url
    return creditor, True


def _moment(day: date, today: date) -> datetime:
    """The creditor's dunning time (08:30) that day, and never later than now."""
    at = day_start(day, TIMEZONE) + timedelta(hours=8, minutes=30)
    return min(at, datetime.now(timezone.utc)) if day == today else at


def _creditor() -> Creditor:
    creditor, _key = tenants.create_creditor(
        name="Atelier Démo", email=EMAIL, password=PASSWORD, currency="EUR", timezone=TIMEZONE,
        language="fr", legal_name="Atelier Démo SARL", registration_number="123456789",
        vat_number="FR32123456789", address="12 rue des Lilas, 69003 Lyon", phone="+33 4 72 00 00 00",
        iban="FR7630006000011234567890189", bic="AGRIFRPP")
    for i, company in enumerate(COMPANIES, 1):
        english = company.endswith(("Ltd", "AB"))
        public = company.startswith("Mairie")
        ledger.upsert_debtor(creditor, f"C{i:04d}", {
            "name": company, "email": f"compta{i}@example.com", "language": "en" if english else "fr",
            "profile": "public_sector" if public else "standard", "kind": "public" if public else "business",
            "address": _address(i, company, english)}, actor="demo")
    return creditor


def _address(i: int, company: str, english: bool) -> str | None:  # names fit a 38-character line
    """A postal address for letters; every seventh debtor has none, as in real ledgers (the
    approval list then asks for it)."""
    if i % 7 == 0:
        return None
    if company.endswith("AB"):
        return f"{company}\nDrottninggatan {i}\n111 51 STOCKHOLM\nSUÈDE"
    if english:
        return f"{company}\n{i} Baker Street\nLONDON NW1 6XE\nROYAUME-UNI"
    town = ("69002 LYON", "75011 PARIS", "13001 MARSEILLE", "31000 TOULOUSE", "33000 BORDEAUX")[i % 5]
    return f"{company[:38]}\nService comptabilité\n{i} rue du Commerce\n{town}"


def _ledger(today: date) -> list[_Invoice]:
    """The invoices of the story (due from 90 days ago to 30 days ahead) and who pays when."""
    rng = random.Random(20261123)
    book, n = [], 0
    for i in range(1, len(COMPANIES) + 1):
        for _ in range(rng.randint(3, 7)):
            n += 1
            due = today + timedelta(days=rng.randint(-90, 30))
            inv = _Invoice(f"C{i:04d}", f"FA-2026-{n:04d}", due - timedelta(days=30), due,
                           f"{rng.randint(80, 4800)}.{rng.randint(0, 99):02d}")
            roll = rng.random()
            if roll < 0.3 and inv.issue < today:  # paid around the due date, some in part
                inv.paid_on, inv.part = min(today - timedelta(days=1), due + timedelta(days=rng.randint(-5, 20))), roll >= 0.2
            book.append(inv)
    return book


def _morning(creditor: Creditor, book: list[_Invoice], day: date, start: date, today: date) -> None:
    """Before the day's run: invoices issued (the import on the first day), transfers received,
    and near today a debtor's dispute and another's promise, through the portal's services."""
    for inv in book:
        if inv.issue == day or (day == start and inv.issue < start):
            ledger.upsert_invoice(creditor, inv.number, {
                "debtor_ref": inv.ref, "issue_date": inv.issue.isoformat(), "due_date": inv.due.isoformat(),
                "amount": inv.amount, "currency": "EUR"}, actor="demo")
        if inv.paid_on is not None and max(inv.paid_on, start, inv.issue) == day:
            invoice = ledger.get_invoice(creditor.id, inv.number)
            amount = to_decimal_string(invoice.amount // 3, "EUR") if inv.part else inv.amount
            ledger.record_offline_payment(creditor, inv.number, {
                "amount": amount, "date": day.isoformat(), "reference": f"VIR-{inv.number}"}, actor="demo")
    if day == today - timedelta(days=3):
        invoice = _overdue(creditor, day, skip_debtors=set())
        disputes.open_dispute(invoice.debtor_id, invoice.number, reason="wrong_amount",
                              comment="Le montant ne correspond pas au devis signé : 2 heures facturées en trop.")
    if day == today - timedelta(days=1):
        disputed = set(db.session.scalars(select(Invoice.debtor_id).where(
            Invoice.creditor_id == creditor.id, Invoice.disputed.is_(True))))
        invoice = _overdue(creditor, day, skip_debtors=disputed)
        promises.make(invoice.debtor_id, invoice.number, (today + timedelta(days=10)).isoformat())


def _overdue(creditor: Creditor, day: date, skip_debtors: set[int]) -> Invoice:
    """The oldest open, undisputed invoice overdue by more than two weeks, of another debtor."""
    return db.session.scalars(
        select(Invoice).join(Debtor, Debtor.id == Invoice.debtor_id)
        .where(Invoice.creditor_id == creditor.id, Invoice.status == "open", Invoice.disputed.is_(False),
               Invoice.due_date < day - timedelta(days=14), Debtor.id.not_in(skip_debtors))
        .order_by(Invoice.due_date, Invoice.id)).first()


def _decide_formal_notices(creditor: Creditor, day: date) -> None:
    """The creditor approves the formal notices waiting for it, all but the latest planned,
    which it has not looked at yet (the one the approval list shows)."""
    waiting = reminders.awaiting(creditor.id, day)
    waiting.sort(key=lambda group: (max(r.dunning_date for r, _i in group[1]), group[0].ref))
    for debtor, _rows in waiting[:-1]:
        reminders.approve(creditor, debtor.id, day, user=EMAIL)
