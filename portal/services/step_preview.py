"""A dunning step's texts as a debtor would read them: a sample message rendered in memory,
from the texts being edited, before they are saved. Nothing here touches the database.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from types import SimpleNamespace

from flask import current_app

from ..domain.charges import ChargesError, late_charges
from ..domain.references import debtor_reference
from ..models import Creditor, DunningStep
from .demand import Demand, Line, reference_rates
from .message_texts import render_message
from .plans import check_template

LANGUAGES = ("fr", "en")
SAMPLE_DEBTORS = {"fr": "Exemple SARL", "en": "Example Ltd"}
TEXT_FIELDS = tuple(f"{part}_{lang}" for lang in LANGUAGES for part in ("subject", "body"))


@dataclass
class Sample:
    lang: str
    subject: str
    text: str


def texts(step: DunningStep, data) -> dict[str, str]:
    """The four texts from the submitted form, the saved ones where a field is missing."""
    return {f: data.get(f, getattr(step, f)) for f in TEXT_FIELDS}


def check_renders(values: dict[str, str]) -> None:
    """Each given text parses and renders (plans.check_template), field by field."""
    for field in TEXT_FIELDS:
        if field in values:
            check_template(values[field], field)


def sample_messages(creditor: Creditor, step: DunningStep, data: dict, today: date) -> list[Sample]:
    """Subject and plain-text body of this step's message to a sample business debtor, in each
    language, with two sample invoices that reached the step today. ``data`` holds the edited
    values (as for plans.update_step; missing ones are the saved ones). Raises Invalid(field)."""
    values = texts(step, data)
    check_renders(values)
    try:
        offset = int(data.get("offset_days", step.offset_days))
    except (TypeError, ValueError):
        offset = step.offset_days
    offset = max(-90, min(365, offset))
    adds_charges = bool(data.get("adds_charges", step.adds_charges))
    requires_approval = bool(data.get("requires_approval", step.requires_approval))
    kind = "formal_notice" if requires_approval else "reminder"
    shown = SimpleNamespace(**values, adds_charges=adds_charges, code=None)
    deadline = today + timedelta(days=creditor.formal_notice_days) if requires_approval else None
    url = f"{current_app.config['PORTAL_BASE_URL']}/l/…"
    currency = creditor.currency
    rates = reference_rates() if adds_charges else []
    samples = []
    for lang in LANGUAGES:
        debtor = SimpleNamespace(name=SAMPLE_DEBTORS[lang], language=lang, kind="business", ref="SAMPLE")
        lines = []
        for n, (extra_days, amount) in enumerate(((0, 120000), (10, 35000)), 1):
            due = today - timedelta(days=offset + extra_days)
            invoice = SimpleNamespace(id=n, number=f"F-{today.year}-{n:04d}", due_date=due, amount=amount,
                                      balance=amount, currency=currency, status="open", kind="invoice")
            interest = indemnity = 0
            if adds_charges:
                interest, indemnity = _charges(creditor, invoice, today, rates)
            lines.append(Line(invoice, amount, max(0, (today - due).days), interest, indemnity))
        demand = Demand(currency, lines, sum(ln.balance + ln.interest + ln.indemnity for ln in lines),
                        debtor_reference(1), deadline)
        subject, text, _html = render_message(creditor, debtor, kind, demand, [], shown, url, today)
        samples.append(Sample(lang, subject, text))
    return samples


def _charges(creditor, invoice, today, rates) -> tuple[int, int]:
    try:
        c = late_charges(invoice.balance, invoice.currency, invoice.due_date, today, debtor_kind="business",
                         reference_rates=rates, contractual_bp=creditor.late_interest_bp)
        return c.interest, c.indemnity
    except ChargesError:  # no reference rate for the period: the indemnity alone, as in reminders
        c = late_charges(invoice.balance, invoice.currency, invoice.due_date, today, debtor_kind="business",
                         reference_rates=[], contractual_bp=0)
        return 0, c.indemnity
