"""Composing the day's messages: one per debtor and day, listing every invoice that reached a step,
in the tone of the most advanced one, with the thanks for what was paid since the last one.

A message states one amount, computed once (demand.compute) and stored on it with its reference
and deadline; the e-mail, its QR code, the letter and the portal banner its link opens all show
that figure. It is written to the outbox in the same transaction as the reminders it carries,
the charges items it claims and its portal link; the outbox sends it after commit.
"""
from __future__ import annotations

import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date
from email.utils import parseaddr

from flask import current_app
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import OPEN_STATUSES, Creditor, Debtor, DunningStep, Invoice, OutboxMessage, Reminder, utcnow
from . import demand as demands
from . import call_tasks, documents, events, ladder, letters, links, pauses, sms_steps
from .mime import smtp_bytes
from .message_texts import render_message


def _claim(debtor_ids: list[int], day: date) -> tuple[list[tuple[Debtor, list]], demands.Reads | None]:
    """The debtors locked (SKIP LOCKED: one being composed by another worker is left to it), each
    with its planned reminders not yet in a message and their invoices, and what computing their
    demands reads: a few statements for a batch of debtors rather than a few per debtor."""
    debtors = db.session.scalars(select(Debtor).where(Debtor.id.in_(debtor_ids)).order_by(Debtor.id)
                                 .with_for_update(skip_locked=True)).all()
    if not debtors:
        return [], None
    planned: dict[int, list] = {d.id: [] for d in debtors}
    # A pause put in force after the planning: what it covers is cancelled, as for a dispute, and
    # planned again once the pause is over (a cancelled step does not block the ladder).
    paused_debtors, paused_invoices = pauses.paused_on(list(planned), day)
    for reminder, invoice in db.session.execute(
            select(Reminder, Invoice).join(Invoice, Invoice.id == Reminder.invoice_id)
            .where(Reminder.debtor_id.in_(planned), Reminder.status == "planned", Reminder.message_id.is_(None))
            .order_by(Invoice.due_date, Invoice.id)):
        if reminder.step_code != "thank_you" and (reminder.debtor_id in paused_debtors
                                                  or invoice.id in paused_invoices):
            reminder.status = "cancelled"
            continue
        planned[reminder.debtor_id].append((reminder, invoice))
    reads = demands.Reads.load([inv.id for rows in planned.values() for r, inv in rows
                                if r.step_code != "thank_you"], day)
    return [(d, planned[d.id]) for d in debtors], reads


class _DayRows:
    """The rows every message of a composing run reads and none writes: the creditor and the
    steps of its plans. A commit expires them, and reloading them after each debtor's commit
    cost a SELECT per message (and one per step); their column values are put back as
    committed state instead, so they are read once per run."""

    def __init__(self, creditor: Creditor):
        self.creditor = creditor
        self.steps: dict[int, DunningStep] = {}
        self._kept: list[tuple[object, dict]] = []
        self._keep(creditor)

    def _keep(self, obj) -> None:
        self._kept.append((obj, {a.key: getattr(obj, a.key) for a in inspect(obj).mapper.column_attrs}))

    def top_step(self, rows) -> DunningStep | None:
        ids = {r.step_id for r, _ in rows if r.step_id}
        missing = ids - self.steps.keys()
        if missing:
            for step in db.session.scalars(select(DunningStep).where(DunningStep.id.in_(missing))):
                self.steps[step.id] = step
                self._keep(step)
        steps = [self.steps[i] for i in ids if i in self.steps]
        return max(steps, key=lambda s: s.position) if steps else None

    def commit(self) -> None:
        db.session.commit()
        self._restore()

    def rollback(self) -> None:
        db.session.rollback()
        self._restore()

    def _restore(self) -> None:
        for obj, values in self._kept:
            for key, value in values.items():
                set_committed_value(obj, key, value)


#: debtors composed in one transaction: a commit is a round trip, and on a loaded machine each
#: round trip waits for a CPU; a batch that fails is composed again one debtor per transaction
BATCH = 25


def compose_day(creditor: Creditor, day: date) -> int:
    """Turn every planned reminder of the creditor into messages; returns messages written."""
    debtor_ids = db.session.scalars(
        select(Reminder.debtor_id).where(Reminder.creditor_id == creditor.id, Reminder.status == "planned",
                                         Reminder.message_id.is_(None)).distinct()).all()
    db.session.commit()
    rows = _DayRows(creditor)
    written = 0
    for start in range(0, len(debtor_ids), BATCH):
        batch = debtor_ids[start:start + BATCH]
        try:
            claimed, reads = _claim(batch, day)
            staged: list[_Staged] = []
            done = sum(_compose_debtor_once(rows, debtor, planned, day, False, reads, staged)
                       for debtor, planned in claimed)
            _store(staged)
            rows.commit()
        except Exception:  # noqa: BLE001 - composed again one by one, where a failure shows as it did
            rows.rollback()
            done = sum(_compose_debtor(rows, debtor_id, day) for debtor_id in batch)
        written += done
    return written


def compose_debtor(creditor: Creditor, debtor_id: int, day: date) -> int:
    """One debtor's planned reminders into messages now (the back office's "send the next step
    now"), exactly as compose_day does for each debtor; returns messages written."""
    db.session.commit()
    return _compose_debtor(_DayRows(creditor), debtor_id, day)


def _compose_debtor(day_rows: _DayRows, debtor_id: int, day: date) -> int:
    """The debtor's messages in one transaction. The unique daily key (one e-mail and one letter
    per debtor and day) guards against a second message; when it refuses one (another worker, a
    run again), the debtor is composed again with each message in a savepoint, so that the
    message already there only makes its reminders wait. Savepoints for every debtor cost two
    statements a message for a case that almost never happens."""
    written = 0
    try:
        claimed, reads = _claim([debtor_id], day)  # nothing claimed: composed by another worker
        for debtor, rows in claimed:
            written = _compose_debtor_once(day_rows, debtor, rows, day, False, reads)
    except IntegrityError:
        day_rows.rollback()
        claimed, reads = _claim([debtor_id], day)
        for debtor, rows in claimed:
            written = _compose_debtor_once(day_rows, debtor, rows, day, True, reads)
    day_rows.commit()
    return written


def _compose_debtor_once(day_rows: _DayRows, debtor: Debtor, rows, day: date, guarded: bool,
                         reads: demands.Reads, staged: list[_Staged] | None = None) -> int:
    """The debtor's messages from its planned reminders (`rows`: (reminder, invoice) by due date);
    `staged`: the batch's messages, stored together (_store), else each stored at once."""
    creditor = day_rows.creditor
    thanks, dunning = [], []
    for reminder, invoice in rows:
        if reminder.step_code == "thank_you":
            thanks.append((reminder, invoice))
        elif invoice.status in OPEN_STATUSES and not invoice.disputed:
            dunning.append((reminder, invoice))
        else:  # paid or disputed since it was planned: nothing to chase
            reminder.status = "cancelled"
    if thanks and not debtor.email:  # a thank-you is never worth a stamp
        for reminder, _ in thanks:
            reminder.status = "cancelled"
        thanks = []
    written = 0
    day_rows.top_step(dunning)  # loads the rows' steps: those at a call step go to a call task
    dunning = call_tasks.take_calls(debtor, dunning, day_rows.steps, day)
    step = day_rows.top_step(dunning)
    texted = dunning and step is not None and step.channel == "sms"
    if texted and sms_steps.number_or_fall_back(creditor, debtor, step, day):  # else by e-mail, as below
        written += _write(creditor, debtor, dunning, [], step, day, "sms", guarded, reads, staged)
        dunning, step = [], None
    by_letter = dunning and (not debtor.email or step.channel == "letter")
    if by_letter:
        written += _write(creditor, debtor, dunning, [], step, day, "letter", guarded, reads, staged)
        dunning, step = [], None
    if dunning or thanks:  # one e-mail: thanks for what was paid, then what remains
        written += _write(creditor, debtor, dunning, thanks, step, day, "email", guarded, reads, staged)
    return written


def _steps(rows) -> dict[int, DunningStep]:
    ids = {r.step_id for r, _ in rows if r.step_id}
    return {s.id: s for s in db.session.scalars(select(DunningStep).where(DunningStep.id.in_(ids)))} if ids else {}


def top_step(rows) -> DunningStep | None:
    steps = _steps(rows)
    return max(steps.values(), key=lambda s: s.position) if steps else None


#: one message a day per debtor and channel: an e-mail, a letter, an SMS (daily_key's prefix)
DAILY_KEYS = {"email": "E", "letter": "L", "sms": "S"}


def _write(creditor: Creditor, debtor: Debtor, dunning, thanks, step: DunningStep | None, day: date,
           channel: str, guarded: bool, reads: demands.Reads, staged: list[_Staged] | None) -> int:
    """One message for these reminders; `guarded`: inside a savepoint, so that if the debtor
    already had its e-mail (or letter, or SMS) today, the reminders wait for tomorrow's."""
    try:
        with db.session.begin_nested() if guarded else nullcontext():
            kind = "reminder" if dunning else "thank_you"
            message = _stage(creditor, debtor, kind, dunning, thanks, step, day, channel, reads=reads,
                             daily_key=f"{DAILY_KEYS[channel]}:{debtor.id}:{day.isoformat()}")
            if staged is None:
                _store([message])
            else:
                staged.append(message)
            if channel == "letter":  # waits in the print queue: the reminders are done
                for reminder, _ in dunning:
                    reminder.status = "sent"
                ladder.record_sent([reminder for reminder, _ in dunning], day)
        return 1
    except IntegrityError:
        if not guarded:
            raise
        return 0


def build_message(creditor: Creditor, debtor: Debtor, kind: str, dunning, thanks, step: DunningStep | None,
                  day: date, channel: str, daily_key: str | None, delivery: str | None = None) -> OutboxMessage:
    """Compute what the message asks, claim its charges, render and store it with a fresh portal
    link that preselects what it asks for and remembers the message (the portal's banner).
    `delivery`: how a letter leaves (email, letter, registered), stated in it; by default as the
    message goes (an e-mail, or a plain letter)."""
    staged = _stage(creditor, debtor, kind, dunning, thanks, step, day, channel, daily_key, delivery)
    _store([staged])
    return staged.message


@dataclass
class _Staged:
    """A message composed and added to the session, not yet written: its id, its link's and
    what refers to them come when it is stored (_store), with the other messages of its batch."""
    message: OutboxMessage
    issued: links.IssuedLink
    reminders: list[Reminder]
    invoices: list[str]
    step_code: str
    day: date


def _stage(creditor: Creditor, debtor: Debtor, kind: str, dunning, thanks, step: DunningStep | None, day: date,
           channel: str, daily_key: str | None, delivery: str | None = None,
           reads: demands.Reads | None = None) -> _Staged:
    """build_message's composing part; `reads`: what the demand reads, loaded for a batch of
    debtors (else read now)."""
    demand = None
    claimed: list[Invoice] = []
    if dunning:
        demand = demands.compute(creditor, debtor, [inv for _, inv in dunning], day, step=step,
                                 formal=kind == "formal_notice" or (step is not None and step.tone == "formal"),
                                 reads=reads)
        _freeze_charges(dunning, demand)
        claimed = demands.claim_charges(creditor, debtor, demand, day)
    asked = [ln.invoice.number for ln in demand.lines] + [c.number for c in claimed] if demand else []
    with_letter = kind == "formal_notice" or channel == "letter"
    by_sms = channel == "sms"
    delivery = delivery or ("email" if channel == "email" else "letter")
    # A letter prints a short link: people type it from paper; an SMS has no room for a long one.
    issued = links.issue(debtor, issued_by="reminder", commit=False, flush=False, invoice_numbers=asked or None,
                         short=with_letter or by_sms)
    domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "relance.local"
    message = OutboxMessage(creditor_id=creditor.id, debtor_id=debtor.id, kind=kind, channel=channel,
                            daily_key=daily_key, to_addr=debtor.email if channel == "email" else None,
                            message_id_header=f"<{uuid.uuid4().hex}@{domain}>",
                            status="letter" if channel == "letter" else "pending", next_attempt_at=utcnow())
    if demand is not None:
        message.amount, message.currency = demand.total, demand.currency
        message.payment_reference, message.deadline = demand.reference, demand.deadline
    message.created_at = message.next_attempt_at  # the Date header, needed before the INSERT
    paid = [inv for _, inv in thanks]
    message.subject, message.text_body, message.html_body = render_message(
        creditor, debtor, kind, demand, paid, step, issued.url, day, message)
    if by_sms:  # the same subject for the back office; the text, recipient and time of an SMS
        sms_steps.fill(message, creditor, debtor, step, demand, [inv for _, inv in dunning], issued.short_url)
    if with_letter:
        message.delivery = delivery
        html = letters.letter_html(creditor, debtor, kind, demand, step, url=issued.short_url, day=day,
                                   delivery=delivery)
        if channel == "email":  # attached to the e-mail: made now
            message.attachment = documents.html_pdf(html)
        else:  # the print queue: made from this HTML when printed
            message.letter_html = html
        prefix = "mise-en-demeure" if kind == "formal_notice" else "relance"
        message.attachment_name = f"{prefix}-{debtor.ref.replace('/', '-')}-{day}.pdf"
    if channel == "email":
        message.raw = smtp_bytes(message, creditor)
    db.session.add(message)
    return _Staged(message, issued, [r for r, _ in dunning + thanks], [inv.number for _, inv in dunning + thanks],
                   step.code if step else kind, day)


def _store(staged: list[_Staged]) -> None:
    """Write staged messages, then their links (which name them), each kind in one statement, and
    what refers to them: the reminders they carry and the events (link issued, message planned)."""
    if not staged:
        return
    db.session.flush([s.message for s in staged])
    for s in staged:
        s.issued.link.message_id = s.message.id
        for reminder in s.reminders:
            reminder.message_id = s.message.id
    db.session.flush([s.issued.link for s in staged])
    for s in staged:
        message = s.message
        links.record_issued(s.issued)
        events.record("message.planned", creditor_id=message.creditor_id, debtor_id=message.debtor_id,
                      actor="system", message_id=message.id, kind=message.kind, channel=message.channel,
                      step=s.step_code, invoices=s.invoices, date=s.day.isoformat(), amount=message.amount)


def _freeze_charges(dunning, demand) -> None:
    """The charges claimed on each invoice, kept on its reminder: what later messages deduct."""
    charges = {ln.invoice.id: (ln.interest, ln.indemnity) for ln in demand.lines}
    for reminder, invoice in dunning:
        reminder.interest, reminder.indemnity = charges.pop(invoice.id, (0, 0))
