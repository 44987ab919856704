"""Call tasks (CONTRACT §4 /tasks, §9): when the dunning run reaches a `call` step, the debtor's
invoices at that step go to one task per debtor and day instead of a message; its reminders wait
as `awaiting_call`. Recording the call's outcome closes the task and records the step sent for
the ladder (DESIGN.md "The ladder": "a call task closed"), so the next rung comes the ladder's
gap later; a promise made on the phone is recorded as one made in the portal (promises.make)."""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ..domain.calendar import today_for
from ..domain.money import to_decimal_string
from ..extensions import db
from ..models import (CALL_OUTCOMES, OPEN_STATUSES, TASK_STATUSES, Creditor, Debtor, Invoice, OutboxMessage, Reminder,
                      Task, TaskInvoice, utcnow)
from . import Conflict, Invalid, NotFound, events, ladder, promises
from .checks import amount_of, check_date, check_storable

MAX_NOTE = 2000


def take_calls(debtor: Debtor, rows, steps: dict, day: date):
    """From the debtor's (reminder, invoice) rows being composed on `day`, those at a call step
    (`steps`: step id -> step) go to the debtor's call task of the day, made if need be; returns
    the others, for the message. In the composer's transaction. If the day's task is already
    closed, the calls wait for tomorrow's (as reminders wait when the day's e-mail has gone)."""
    calls = [(r, inv) for r, inv in rows if r.step_id in steps and steps[r.step_id].channel == "call"]
    if not calls:
        return rows
    rest = [row for row in rows if row not in calls]
    code = max((steps[r.step_id] for r, _ in calls), key=lambda s: s.position).code
    task = _day_task(debtor, day, code)
    if task.status != "open":
        return rest
    for reminder, invoice in calls:
        db.session.add(TaskInvoice(task_id=task.id, invoice_id=invoice.id, reminder_id=reminder.id))
        reminder.status = "awaiting_call"
    events.record("task.opened", creditor_id=debtor.creditor_id, actor="system", debtor_id=debtor.id,
                  task_id=task.id, kind="call", step=code, invoices=[inv.number for _, inv in calls])
    return rest


def _day_task(debtor: Debtor, day: date, code: str) -> Task:
    """The debtor's call task of `day`: unique (debtor, kind, due), so a concurrent run that made
    it first wins and this one joins it."""
    def find():
        return db.session.scalar(select(Task).where(Task.debtor_id == debtor.id, Task.kind == "call",
                                                    Task.due == day))
    task = find()
    if task is not None:
        return task
    try:
        with db.session.begin_nested():
            task = Task(creditor_id=debtor.creditor_id, debtor_id=debtor.id, kind="call", step_code=code, due=day,
                        status="open", assigned_to_id=debtor.owner_id)
            db.session.add(task)
        return task
    except IntegrityError:
        return find()


def task_id(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise NotFound("no such task")
    return int(raw)


def get(creditor_id: int, task_id: int, lock: bool = False) -> Task:
    q = select(Task).where(Task.id == task_id, Task.creditor_id == creditor_id)
    task = db.session.scalar(q.with_for_update() if lock else q)
    if task is None:
        raise NotFound("no such task")
    return task


def listed(creditor_id: int, status: str = "open") -> list[Task]:
    """The tasks with their debtor loaded in the same query, so a long list costs no query per task."""
    if status not in TASK_STATUSES:
        raise Invalid(f"status must be one of {', '.join(TASK_STATUSES)}", "status")
    return list(db.session.scalars(select(Task).options(joinedload(Task.debtor))
                                   .where(Task.creditor_id == creditor_id, Task.status == status)
                                   .order_by(Task.due, Task.id)))


def listed_json(creditor_id: int, status: str = "open") -> list[dict]:
    """GET /tasks: two queries whatever the number of tasks (the tasks with their debtors, then
    every listed task's invoice numbers at once), not two more per task."""
    tasks = listed(creditor_id, status)
    numbers: dict[int, list[str]] = {t.id: [] for t in tasks}
    if tasks:
        for task_id_, number in db.session.execute(
                select(TaskInvoice.task_id, Invoice.number).join(Invoice, Invoice.id == TaskInvoice.invoice_id)
                .where(TaskInvoice.task_id.in_(list(numbers))).order_by(Invoice.due_date, Invoice.id)):
            numbers[task_id_].append(number)
    return [task_json(t, numbers[t.id]) for t in tasks]


def invoices_of(task: Task) -> list[Invoice]:
    return list(db.session.scalars(select(Invoice).join(TaskInvoice, TaskInvoice.invoice_id == Invoice.id)
                                   .where(TaskInvoice.task_id == task.id).order_by(Invoice.due_date, Invoice.id)))


def task_json(task: Task, numbers: list[str] | None = None) -> dict:
    if numbers is None:
        numbers = [i.number for i in invoices_of(task)]
    return {"id": task.id, "kind": task.kind, "debtor_ref": task.debtor.ref,
            "invoices": numbers, "due": task.due.isoformat(), "status": task.status,
            "outcome": task.outcome, "note": task.note,
            "closed_at": task.closed_at.isoformat() if task.closed_at else None}


def _promise_plan(creditor: Creditor, task: Task, data: dict) -> tuple[list[tuple[str, str | None]], date]:
    """(invoice number, amount as a decimal string or None for the whole balance) per promise to
    record, checked before anything is written. An amount is spread over the task's invoices
    that can take a promise, oldest due first."""
    open_ones = []
    for invoice in invoices_of(task):
        try:
            promises.offer(task.debtor_id, invoice.number)
        except (Conflict, NotFound):
            continue  # paid, disputed, in flight or already promised since the task was made
        open_ones.append(invoice)
    if not open_ones:
        raise Conflict("no invoice of this task can take a promise", "outcome", code="no_promisable_invoice")
    day = check_date(data.get("promise_date"), "promise_date")
    today = today_for(creditor)
    latest = date.fromordinal(today.toordinal() + creditor.promise_max_days)
    if not today <= day <= latest:
        raise Invalid(f"promise_date must be between {today.isoformat()} and {latest.isoformat()}", "promise_date")
    raw = data.get("promise_amount")
    if raw in (None, ""):
        return [(i.number, None) for i in open_ones], day
    currency = open_ones[0].currency
    if not isinstance(raw, str) or any(i.currency != currency for i in open_ones):
        raise Invalid("promise_amount must be a decimal string in the invoices' currency", "promise_amount")
    left = amount_of(raw, currency, "promise_amount")
    if not 0 < left <= sum(i.balance for i in open_ones):
        raise Invalid("promise_amount must be positive and at most the balance", "promise_amount")
    plan = []
    for invoice in open_ones:
        if left <= 0:
            break
        part = min(left, invoice.balance)
        plan.append((invoice.number, None if part == invoice.balance else to_decimal_string(part, currency)))
        left -= part
    return plan, day


def record_outcome(creditor: Creditor, task_id: int, data: dict, user=None) -> Task:
    """Close the call task with its outcome (CONTRACT §4): its reminders are recorded sent today
    and the invoices climb; `promise` records the promises to pay. 409 if already closed.
    `user`: the back office's user, None through the API."""
    task = get(creditor.id, task_id, lock=True)
    if task.status != "open":
        raise Conflict("the task is already closed", "id", code="task_closed")
    outcome = data.get("outcome")
    if outcome not in CALL_OUTCOMES:
        raise Invalid(f"outcome must be one of {', '.join(CALL_OUTCOMES)}", "outcome")
    note = data.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise Invalid(f"note must be a text of {MAX_NOTE} characters at most", "note")
    note = (check_storable(note.strip(), "note") or None) if note else None
    promised, day = _promise_plan(creditor, task, data) if outcome == "promise" else ([], None)
    today = today_for(creditor)
    reminders = list(db.session.scalars(select(Reminder).join(TaskInvoice, TaskInvoice.reminder_id == Reminder.id)
                                        .where(TaskInvoice.task_id == task.id, Reminder.status == "awaiting_call")))
    for reminder in reminders:
        reminder.status, reminder.decided_at = "sent", utcnow()
    ladder.record_sent(reminders, today)  # a closed call counts as the step sent
    task.status, task.outcome, task.note, task.closed_at = "done", outcome, note, utcnow()
    task.closed_by_id = user.id if user is not None else None
    events.record("task.closed", creditor_id=creditor.id, actor="creditor" if user is not None else "api",
                  debtor_id=task.debtor_id, task_id=task.id, kind=task.kind, outcome=outcome, note=note,
                  user=user.email if user is not None else None, invoices=[i.number for i in invoices_of(task)],
                  promise_date=day.isoformat() if day else None)
    if not promised:
        db.session.commit()
    try:
        for number, amount in promised:  # the first commits the task's closing with its promise
            promises.make(task.debtor_id, number, day.isoformat(), amount, actor="creditor")
    except Exception:
        db.session.rollback()
        raise
    return task


def workbench(creditor_id: int) -> list[dict]:
    """The open calls for the back office, the most at stake first: the debtor and its numbers,
    what it owes in all, the task's invoices and its last messages."""
    out = []
    for task in listed(creditor_id, "open"):
        owed: dict[str, int] = {}
        for currency, balance in db.session.execute(
                select(Invoice.currency, func.sum(Invoice.amount - Invoice.amount_paid))
                .where(Invoice.debtor_id == task.debtor_id, Invoice.status.in_(OPEN_STATUSES))
                .group_by(Invoice.currency)):
            owed[currency] = int(balance or 0)
        out.append({"task": task, "debtor": task.debtor, "owed": owed, "invoices": invoices_of(task),
                    "messages": _last_messages(task.debtor_id)})
    return sorted(out, key=lambda w: (-sum(w["owed"].values()), w["task"].due, w["task"].id))


def _last_messages(debtor_id: int, limit: int = 3) -> list[OutboxMessage]:
    """The debtor's latest messages (reminders, letters, replies), newest first."""
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.debtor_id == debtor_id)
                                   .order_by(OutboxMessage.id.desc()).limit(limit)))
