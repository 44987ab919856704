"""A plan step's SMS as a sample debtor would get it, in both languages, counted as Twilio bills
it (domain/sms.py): the editor shows its characters and segments before the step is saved.

The text itself is not the step's: an SMS is the fixed wording of the step's tone around the
creditor's name, one invoice's amount and due date and a short portal link (domain/sms.compose).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from babel.dates import format_date

from .. import gateways
from ..domain import sms
from ..domain.money import format_money
from ..models import Creditor, DunningStep
from .links import SHORT_ALPHABET, SHORT_LENGTH

SAMPLE_AMOUNT = 120000  # the first sample invoice of the e-mail preview (step_preview)
DATE_FORMATS = {"fr": "dd/MM/yyyy", "en": "d MMM yyyy"}  # short, and never ambiguous in English


@dataclass
class SmsSample:
    lang: str
    text: str | None            # None: it cannot fit two segments (the step goes by e-mail)
    count: sms.Count | None
    full_count: sms.Count       # with the creditor's name in full, before compose shortens it

    @property
    def shortened(self) -> bool:
        return self.text is not None and self.full_count.segments > sms.MAX_SEGMENTS

    @property
    def too_long(self) -> bool:
        return self.text is None


def sample_link(base_url: str) -> str:
    """A portal link's short form as the SMS carries it (a code of the real length)."""
    code = (SHORT_ALPHABET * SHORT_LENGTH)[3:3 + SHORT_LENGTH]
    return f"{base_url}/l/{code}"


def samples(creditor: Creditor, step: DunningStep, today: date, base_url: str,
            offset_days: int | None = None) -> list[SmsSample]:
    """The step's SMS for one sample invoice that reached the step today (`offset_days` as
    edited, else the step's), in French and English."""
    gateway = gateways.sms()
    # A number can take replies ("Reply STOP"); an alphanumeric sender cannot.
    replies = gateway is None or gateway.sender.startswith("+")
    due = today - timedelta(days=step.offset_days if offset_days is None else offset_days)
    number = f"F-{today.year}-0001"
    link = sample_link(base_url)
    out = []
    for lang in ("fr", "en"):
        amount = format_money(SAMPLE_AMOUNT, creditor.currency, lang)
        due_text = format_date(due, DATE_FORMATS[lang], locale=lang)
        name = creditor.name
        try:
            text = sms.compose(step.tone, lang, name, amount, due_text, link, invoice_ref=number, replies=replies)
        except sms.SmsTooLong:
            text = None
        # The same fields written as compose writes them, the name whole: what it would cost.
        full = sms.TEMPLATES[lang][step.tone].format(
            name=" ".join(name.split()), amount=" ".join(amount.replace("\u00a0", " ").replace("\u202f", " ").split()),
            due=due_text, link=link, ref=f" {number}") + (sms.STOP_BY_REPLY[lang] if replies else "")
        out.append(SmsSample(lang, text, sms.count(text) if text else None, sms.count(full)))
    return out
