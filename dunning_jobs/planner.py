"""What is due today: set-based SQL, one INSERT ... SELECT per plan step.

Steps are taken from the most advanced down; an invoice gets a step only when it has no
reminder at that position or beyond, so a late-loaded invoice jumps straight to the step its
age calls for instead of receiving every earlier one. The unique (invoice, step) constraint
makes a second run, or a concurrent one, plan nothing twice.
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import String, and_, cast, exists, func, insert, literal, null, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.extensions import db
from portal.models import (Creditor, Debtor, Event, Invoice, PaymentAttempt, PaymentAttemptLine, PaymentPromise, Reminder,
                           utcnow)
from portal.services.plans import ensure_default_plans, plans_for

OPEN = ("open", "partially_paid")
THANK_YOU_WINDOW_DAYS = 30
COLUMNS = ["creditor_id", "debtor_id", "invoice_id", "step_id", "step_code", "position", "dunning_date",
           "status", "interest", "indemnity", "created_at"]


def _insert():
    dialect = db.session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(Reminder.__table__)


def _insert_from(rows) -> int:
    """INSERT ... SELECT ... ON CONFLICT DO NOTHING; the number of rows really inserted
    (RETURNING, since psycopg reports no rowcount for this statement)."""
    stmt = (_insert().from_select(COLUMNS, rows)
            .on_conflict_do_nothing(index_elements=["invoice_id", "step_code"])
            .returning(Reminder.__table__.c.id))
    return len(db.session.execute(stmt).all())


def lock_creditor(creditor_id: int) -> None:
    """Serialise planners of one creditor (PostgreSQL); SQLite has a single writer anyway."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(7311, :c)"), {"c": creditor_id})


def remindable(day: date):
    """Conditions under which an invoice may be reminded at all on `day`: open, not under
    dispute, no payment in flight (a card payment settling, a direct debit submitted) and no
    live promise to pay by `day` or later."""
    in_flight = (exists().where(PaymentAttemptLine.invoice_id == Invoice.id,
                                PaymentAttempt.id == PaymentAttemptLine.attempt_id,
                                PaymentAttempt.status == "processing"))
    promised = exists().where(PaymentPromise.invoice_id == Invoice.id, PaymentPromise.status == "live",
                              PaymentPromise.promised_date >= day)
    return and_(Invoice.status.in_(OPEN), Invoice.disputed.is_(False), ~in_flight, ~promised)


def plan_day(creditor: Creditor, day: date) -> tuple[int, int]:
    """Plan every step due on `day`; returns (planned, awaiting approval) newly created."""
    ensure_default_plans(creditor.id)
    lock_creditor(creditor.id)
    now = utcnow()
    plans = plans_for(creditor.id)
    profiles = [p.profile for p in plans]
    planned = 0
    for plan in plans:
        if plan.profile == "standard":  # also serves profiles without a plan of their own
            profile_match = or_(Debtor.profile == "standard", Debtor.profile.not_in(profiles))
        else:
            profile_match = Debtor.profile == plan.profile
        for step in sorted(plan.steps, key=lambda s: -s.position):
            later = exists().where(Reminder.invoice_id == Invoice.id, Reminder.position >= step.position,
                                   Reminder.step_code != "thank_you")
            status = "awaiting_approval" if step.requires_approval else "planned"
            rows = (select(Invoice.creditor_id, Invoice.debtor_id, Invoice.id, literal(step.id),
                           literal(step.code), literal(step.position), literal(day), literal(status),
                           literal(0), literal(0), literal(now, Reminder.created_at.type))
                    .join(Debtor, Debtor.id == Invoice.debtor_id)
                    .where(Invoice.creditor_id == creditor.id, profile_match, remindable(day),
                           Invoice.due_date <= day - timedelta(days=step.offset_days), ~later))
            planned += _insert_from(rows)
    planned += _plan_thank_yous(creditor, day, now)
    awaiting = _record_awaiting(creditor.id, now)
    db.session.commit()
    return planned, awaiting


def _record_awaiting(creditor_id: int, now) -> int:
    """One event per reminder this run put in the approval list, written by the database in one
    statement: a first run over a large backlog must not build an object per reminder."""
    dialect = db.session.get_bind().dialect.name
    json_object = func.json_build_object if dialect == "postgresql" else func.json_object
    new = (Reminder.creditor_id == creditor_id, Reminder.created_at == literal(now, Reminder.created_at.type),
           Reminder.status == "awaiting_approval")
    rows = select(Reminder.creditor_id, Reminder.debtor_id, Reminder.invoice_id, literal("reminder.awaiting_approval"),
                  literal("system"), literal(now, Event.at.type),
                  json_object("step", Reminder.step_code, "date", cast(Reminder.dunning_date, String))).where(*new)
    db.session.execute(insert(Event).from_select(
        ["creditor_id", "debtor_id", "invoice_id", "type", "actor", "at", "data"], rows))
    return db.session.scalar(select(func.count()).select_from(Reminder).where(*new))


def _plan_thank_yous(creditor: Creditor, day: date, now) -> int:
    """Once per invoice whose balance reached zero recently, by any path."""
    since = now - timedelta(days=THANK_YOU_WINDOW_DAYS)
    done = exists().where(Reminder.invoice_id == Invoice.id, Reminder.step_code == "thank_you")
    rows = (select(Invoice.creditor_id, Invoice.debtor_id, Invoice.id, null(), literal("thank_you"),
                   literal(0), literal(day), literal("planned"), literal(0), literal(0),
                   literal(now, Reminder.created_at.type))
            .where(Invoice.creditor_id == creditor.id, Invoice.status == "paid", Invoice.updated_at >= since,
                   ~done))
    return _insert_from(rows)
