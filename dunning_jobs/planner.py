"""What is due today: set-based SQL, one INSERT ... SELECT for the steps of every plan.

The rule (domain/schedule.py; tests/integration/test_planner_*.py hold this SQL to it): each
remindable invoice gets the step of its debtor's plan (the profile's own, else standard) with
the highest position whose day has come (due_date <= day - offset_days), only if it has no
reminder at that position or beyond. So a late-loaded invoice jumps straight to the step its age
calls for, and missed steps are never sent late. The cutoffs are constants computed here, so one
CASE picks every invoice's step in a single read of the open invoices (a statement per plan step
read them 20 times). The unique (invoice, step) constraint makes a second run, or a concurrent
one, plan nothing twice.

On PostgreSQL that one SELECT fills a temporary table (CREATE TEMPORARY TABLE ... AS, which
PostgreSQL runs in parallel, unlike the SELECT of an INSERT) and the INSERT reads it: the same
rows. Each reminder inserted costs one check of its composite key to its invoice, one to its
step (models.Reminder).
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import String, and_, case, cast, column, exists, func, insert, literal, null, select, table, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable
from sqlalchemy.sql.visitors import InternalTraversal

from portal.extensions import db
from portal.models import (Creditor, Debtor, Event, Invoice, PaymentAttempt, PaymentAttemptLine, PaymentPromise,
                           Reminder, utcnow)
from portal.services.plans import ensure_default_plans, plans_for

OPEN = ("open", "partially_paid")
THANK_YOU_WINDOW_DAYS = 30
COLUMNS = ["creditor_id", "debtor_id", "invoice_id", "step_id", "step_code", "position", "dunning_date",
           "status", "interest", "indemnity", "created_at"]


def _insert():
    dialect = db.session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(Reminder.__table__)


def _insert_from(rows) -> int:
    """INSERT ... SELECT ... ON CONFLICT DO NOTHING; the number of rows really inserted, from
    the statement's row count (not RETURNING: 66k ids fetched into Python only to be counted)."""
    stmt = (_insert().from_select(COLUMNS, rows)
            .on_conflict_do_nothing(index_elements=["invoice_id", "step_code"])
            .execution_options(preserve_rowcount=True))
    return db.session.execute(stmt).rowcount


CANDIDATES = table("planner_candidate", *(column(c) for c in COLUMNS))


def _insert_through_candidates(rows) -> int:
    """PostgreSQL: the same rows, selected first into a temporary table, then inserted.

    PostgreSQL never runs the SELECT of an INSERT ... SELECT in parallel, but it does run that
    of a CREATE TABLE ... AS in parallel: reading and probing the open invoices (most of the
    work before the writes) is then shared with the parallel workers
    (max_parallel_workers_per_gather) when the table is large enough for PostgreSQL to choose
    it. Same transaction; each statement sees the data committed when it starts (READ
    COMMITTED), as the single statement did, and the unique (invoice, step) index still
    decides. Every candidate is selected before the first is inserted, so the probes never walk
    the rows being inserted; they are written in the order selected (invoice order: locality in
    the unique index, the result does not depend on it). On an error the rollback drops the
    temporary table with the rest."""
    db.session.execute(_CreateTempAs(CANDIDATES.name, rows))
    inserted = _insert_from(select(*(CANDIDATES.c[c] for c in COLUMNS)))
    db.session.execute(text(f"DROP TABLE {CANDIDATES.name}"))
    return inserted


class _CreateTempAs(Executable, ClauseElement):
    """CREATE TEMPORARY TABLE <name> ON COMMIT DROP AS <select>, bound parameters and all.
    Cached like any statement, keyed on its name and query (uncached, the SELECT was compiled
    again on every run: about 8 ms, most of a small creditor's planning)."""
    inherit_cache = True
    _traverse_internals = [("name", InternalTraversal.dp_string), ("query", InternalTraversal.dp_clauseelement)]

    def __init__(self, name: str, query):
        self.name, self.query = name, query


@compiles(_CreateTempAs, "postgresql")
def _compile_create_temp_as(element, compiler, **kw):
    return f"CREATE TEMPORARY TABLE {element.name} ON COMMIT DROP AS {compiler.process(element.query, **kw)}"


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
    planned = _plan_steps(creditor, plans_for(creditor.id), day, now)
    planned += _plan_thank_yous(creditor, day, now)
    awaiting = _record_awaiting(creditor.id, now)
    db.session.commit()
    return planned, awaiting


def _chosen(plans, day: date, value):
    """value(step) of the step due for an invoice on `day`: per plan, a CASE over its steps'
    cutoffs (due_date <= day - offset_days, constants from Python) from the highest position
    down picks the most advanced step whose day has come; a CASE on the debtor's profile picks
    the plan. Only debtors whose profile has a plan of its own are joined (see _plan_steps): the
    others (NULL profile) fall to the standard plan. NULL when no step is due."""
    def by_plan(plan):
        steps = sorted(plan.steps, key=lambda s: -s.position)
        if not steps:
            return null()
        return case(*[(Invoice.due_date <= day - timedelta(days=s.offset_days), value(s)) for s in steps])

    standard = next((p for p in plans if p.profile == "standard"), None)
    own = {p.profile: by_plan(p) for p in plans if p.profile != "standard"}
    fallback = by_plan(standard) if standard else null()
    return case(own, value=Debtor.profile, else_=fallback) if own else fallback


def _plan_steps(creditor: Creditor, plans, day: date, now) -> int:
    """Every step due on `day`, all plans at once: one scan of the open invoices instead of one
    per (plan, step). An invoice gets its chosen step only when it has no reminder at that
    position or beyond.

    The chosen step's id and position are CASE expressions (constants from the plans loaded
    here), and its code and status CASEs on that id: no join with dunning_step. So PostgreSQL
    estimates the candidates right (a join on a CASE is guessed at 1/200 of them, which made it
    probe the reminders once per candidate where a hash anti-join is cheaper: 1M open invoices,
    0.9 -> 0.7 s on one CPU). The foreign key still checks every step id inserted."""
    steps = [s for p in plans for s in p.steps]
    if not steps:
        return 0
    own = [p.profile for p in plans if p.profile != "standard"]
    step_id = _chosen(plans, day, lambda s: s.id)
    position = _chosen(plans, day, lambda s: s.position)
    code = case({s.id: s.code for s in steps}, value=step_id)
    status = case({s.id: "awaiting_approval" if s.requires_approval else "planned" for s in steps}, value=step_id)
    # A reminder at the chosen position or beyond: on PostgreSQL the unique (invoice_id,
    # step_code) index carries the position too (INCLUDE), so this reads no reminder row. A
    # reminder of the chosen step is one of them (same position), unless the debtor changed
    # plans since; then the insert conflicts on that index and drops the row.
    later = exists().where(Reminder.invoice_id == Invoice.id, Reminder.position >= position,
                           Reminder.step_code != "thank_you")
    # Not even the earliest step is due for invoices due after this: filtered before any join.
    earliest = day - timedelta(days=min(s.offset_days for s in steps))
    values = (Invoice.creditor_id, Invoice.debtor_id, Invoice.id, step_id, code, position, literal(day), status,
              literal(0), literal(0), literal(now, Reminder.created_at.type))
    rows = (select(*(v.label(c) for v, c in zip(values, COLUMNS)))
            # Only debtors whose profile has a plan of its own, usually few: a small hash table
            # instead of every debtor (1M invoices: 0.2 s less). The others get the standard plan.
            .outerjoin(Debtor, and_(Debtor.id == Invoice.debtor_id, Debtor.profile.in_(own)))
            .where(Invoice.creditor_id == creditor.id, Invoice.due_date <= earliest, step_id.is_not(None),
                   remindable(day), ~later)
            # The sort reads every candidate before the first row is written, so the probes never
            # walk the rows this statement inserts: with an empty or unanalysed reminder table
            # PostgreSQL probes it by seq scan, quadratic without this (100k backlog: 66 s).
            .order_by(Invoice.id))
    if db.session.get_bind().dialect.name == "postgresql":
        return _insert_through_candidates(rows)
    return _insert_from(rows)


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
