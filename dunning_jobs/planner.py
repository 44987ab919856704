"""What is due today: set-based SQL, one INSERT ... SELECT for the steps of every plan.

The rule is the ladder (domain/schedule.py; tests/integration/test_planner_*.py hold this SQL to
it): an invoice climbs its debtor's plan (the profile's own, else standard) one after-due step
(rung) at a time. Rung 1 is due when its day has come; rung k+1 when its day has come, the
invoice stands on rung k (invoice.rung_reached) and rung k was sent (invoice.rung_sent_on) at
least max(7 days, the gap between their offsets) ago. The courtesy notice (offset <= 0) is
optional: planned only while rung 1 is not due and no rung was sent, and not once a notice went
out on or after its day (rung 0's rung_sent_on). Both columns are written when a send is
recorded (portal/services/ladder.py), so the invoice row alone says which step is due: one probe
of the unique (invoice, step) index per candidate then says whether that step is already planned
(or awaiting approval, failed, skipped: on a quiet day, the few candidates left). A step
cancelled at composing (the invoice was disputed, paid or in flight then) does not block the
ladder: when it is due again its row is planned again (ON CONFLICT ... DO UPDATE ... WHERE
status = 'cancelled'). The unique (invoice, step) constraint makes a second run, or a concurrent
one, plan nothing twice. Charges items (invoice.kind = 'charges') are never planned.

Built so that planning costs a small multiple of reading the open invoices once, at any size:
- the cutoffs are computed here and bound as parameters, so one CASE picks every invoice's step
  in a single read of the open invoices, instead of a statement per plan step;
- the statement is built once per shape of plans (profiles and their numbers of rungs and
  before-due steps: the same for every creditor on the default plans) and run with this run's
  values, because building and keying it for SQLAlchemy's cache costs more than a small
  creditor's planning in the database;
- on PostgreSQL, when the invoices are large enough to be read in parallel, the candidates the
  invoice rows name fill a temporary table (CREATE TEMPORARY TABLE ... AS, which PostgreSQL runs
  in parallel, unlike the SELECT of an INSERT) and the INSERT probes the reminders for them
  only: PostgreSQL cannot estimate the CASE that picks the step and, reading every invoice as a
  candidate, would hash every reminder instead, the whole cost of a day with nothing to do.
Each reminder inserted costs one check of its composite key to its invoice, one to its step
(models.Reminder).
"""
from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

from sqlalchemy import (Date, Integer, String, and_, bindparam, case, cast, column, exists, func, insert, literal,
                        null, or_, select, table, text)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable, FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from portal.domain.schedule import Step, before_due, rung_gap, rungs
from portal.extensions import db
from portal.models import (OPEN_STATUSES, Creditor, Debtor, DunningPause, Event, Invoice, PaymentAttempt,
                           PaymentAttemptLine, PaymentPromise, Reminder, utcnow)
from portal.services import pauses
from portal.services.plans import PROFILE_OFFSETS, ensure_default_plans, plans_for

THANK_YOU_WINDOW_DAYS = 30
COLUMNS = ["creditor_id", "debtor_id", "invoice_id", "step_id", "step_code", "position", "rung", "dunning_date",
           "status", "interest", "indemnity", "created_at"]
#: what a cancelled reminder planned again takes from the new row (the rest is reset below)
REPLANNED = ["step_id", "position", "rung", "dunning_date", "status", "interest", "indemnity", "created_at"]
CANDIDATES = table("planner_candidate", *(column(c) for c in COLUMNS))


class _InsertNew(Executable, ClauseElement):
    """INSERT INTO reminder (COLUMNS) <select> ON CONFLICT (invoice_id, step_code) DO NOTHING, on
    both engines; with `replan`, a cancelled reminder in the way is planned again instead (its
    row, its id: nothing was sent). Cached like any statement (SQLAlchemy 2.0 compiles the
    dialects' own on_conflict_do_*() inserts again on every execution)."""
    inherit_cache = True
    _traverse_internals = [("query", InternalTraversal.dp_clauseelement), ("replan", InternalTraversal.dp_boolean)]
    _inline = False  # read by the compiler, which sees the INSERT inside as the statement

    def __init__(self, query, replan: bool = False):
        self.query, self.replan = query, replan


@compiles(_InsertNew)
def _compile_insert_new(element, compiler, **kw):
    statement = insert(Reminder.__table__).from_select(COLUMNS, element.query)
    action = "DO NOTHING"
    if element.replan:
        action = ("DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in REPLANNED)
                  + ", message_id = NULL, postponed_to = NULL, decided_at = NULL WHERE reminder.status = 'cancelled'")
    return f"{compiler.process(statement, **kw)} ON CONFLICT (invoice_id, step_code) {action}"


class _CreateTempAs(Executable, ClauseElement):
    """CREATE TEMPORARY TABLE <name> ON COMMIT DROP AS <select>, bound parameters and all."""
    inherit_cache = True
    _traverse_internals = [("name", InternalTraversal.dp_string), ("query", InternalTraversal.dp_clauseelement)]

    def __init__(self, name: str, query):
        self.name, self.query = name, query


@compiles(_CreateTempAs, "postgresql")
def _compile_create_temp_as(element, compiler, **kw):
    return f"CREATE TEMPORARY TABLE {element.name} ON COMMIT DROP AS {compiler.process(element.query, **kw)}"


class _DaysBetween(FunctionElement):
    """later - earlier, two dates, in days (PostgreSQL's date subtraction; SQLite keeps ISO text)."""
    type = Integer()
    inherit_cache = True


@compiles(_DaysBetween, "postgresql")
def _compile_days_between_pg(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"({later} - {earlier})"


@compiles(_DaysBetween)
def _compile_days_between(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"(julianday({later}) - julianday({earlier}))"


def _inserted(statement, params: dict) -> int:
    """Rows really inserted, from the row count (RETURNING would fetch every id only to count them)."""
    return db.session.execute(statement, params, execution_options={"preserve_rowcount": True}).rowcount


LOCK = "SELECT pg_advisory_xact_lock(7311, :c)"
# The planner's lock, and whether PostgreSQL could read the invoices in parallel at all: their
# table at least min_parallel_table_scan_size, workers allowed. Only then is the temporary table
# (two statements more, its catalog rows) worth it.
LOCK_AND_PARALLEL = text(
    f"{LOCK}, pg_relation_size('invoice') >= pg_size_bytes(current_setting('min_parallel_table_scan_size')) "
    "AND current_setting('max_parallel_workers_per_gather')::int > 0")


def lock_creditor(creditor_id: int) -> None:
    """Serialise planners of one creditor (PostgreSQL); SQLite has a single writer anyway."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text(LOCK), {"c": creditor_id})


def remindable(day):
    """Conditions under which an invoice may be reminded at all on `day` (a date or a bound
    parameter): open, not under dispute, no payment in flight (a card payment settling, a direct
    debit submitted), no live promise to pay by `day` or later and no pause of the debtor's or
    the invoice's dunning in force on `day` (services/pauses.py: an anti-join on a small table,
    probed by its (debtor_id, until) index). Charges items (late-payment charges a message
    claimed) are never reminded on their own."""
    in_flight = (exists().where(PaymentAttemptLine.invoice_id == Invoice.id,
                                PaymentAttempt.id == PaymentAttemptLine.attempt_id,
                                PaymentAttempt.status == "processing"))
    promised = exists().where(PaymentPromise.invoice_id == Invoice.id, PaymentPromise.status == "live",
                              PaymentPromise.promised_date >= day)
    paused = exists().where(DunningPause.debtor_id == Invoice.debtor_id, pauses.in_force(day),
                            or_(DunningPause.invoice_id.is_(None), DunningPause.invoice_id == Invoice.id))
    return and_(Invoice.status.in_(OPEN_STATUSES), Invoice.kind == "invoice", Invoice.disputed.is_(False),
                ~in_flight, ~promised, ~paused)


def plan_day(creditor: Creditor, day: date) -> tuple[int, int]:
    """Plan every step due on `day`; returns (planned, awaiting approval) newly created."""
    plans = plans_for(creditor.id)
    if not PROFILE_OFFSETS.keys() <= {p.profile for p in plans}:
        ensure_default_plans(creditor.id)  # commits: before the lock
        plans = plans_for(creditor.id)
    if db.session.get_bind().dialect.name == "postgresql":
        parallel = db.session.execute(LOCK_AND_PARALLEL, {"c": creditor.id}).one()[1]
    else:
        parallel = False
    now = utcnow()
    planned = _plan_steps(creditor, plans, day, now, parallel)
    planned += _plan_thank_yous(creditor, day, now)
    awaiting = _record_awaiting(creditor.id, now)
    db.session.commit()
    return planned, awaiting


def _ordered(plans):
    """The plans in the order their statement binds them: standard last (the CASE's else), each
    with its steps in the order its CASE tries them: the rungs (rung 1 first), then the steps
    before the due date, the most advanced first. Returns [(profile, rungs, before-due steps)]."""
    ordered = sorted(plans, key=lambda p: (p.profile == "standard", p.profile))
    out = []
    for p in ordered:
        steps = {s.position: s for s in p.steps}
        rule = [Step(s.code, s.position, s.offset_days) for s in p.steps]
        out.append((p.profile, [steps[s.position] for s in rungs(rule)],
                    [steps[s.position] for s in before_due(rule)]))
    return out


def _plan_steps(creditor: Creditor, plans, day: date, now, parallel: bool, debtor_id: int | None = None) -> int:
    """Every step due on `day`, all plans at once: one scan of the open invoices instead of one
    per (plan, step). An invoice gets its step unless that step is already planned for it (or
    was sent, failed, skipped); a cancelled one is planned again. `debtor_id`: that debtor's
    invoices only."""
    ordered = _ordered(plans)
    steps = [s for _profile, ladder, before in ordered for s in ladder + before]
    if not steps:
        return 0
    params = {"creditor": creditor.id, "day": day, "now": now, "debtor": debtor_id,
              "earliest": day - timedelta(days=min(s.offset_days for s in steps))}
    for i, (_profile, ladder, before) in enumerate(ordered):
        for j, s in enumerate(ladder + before):
            params.update({f"cut_{i}_{j}": day - timedelta(days=s.offset_days), f"off_{i}_{j}": s.offset_days,
                           f"id_{i}_{j}": s.id,
                           f"pos_{i}_{j}": s.position, f"code_{i}_{j}": s.code,
                           f"rung_{i}_{j}": j + 1 if j < len(ladder) else None,
                           f"status_{i}_{j}": "awaiting_approval" if s.requires_approval else "planned"})
            if 0 < j < len(ladder):
                lower, upper = (Step(x.code, x.position, x.offset_days) for x in (ladder[j - 1], s))
                params[f"sent_{i}_{j}"] = day - timedelta(days=rung_gap(lower, upper))
    shape = tuple((profile, len(ladder), len(before)) for profile, ladder, before in ordered)
    if debtor_id is not None:
        return _inserted(_steps_insert(shape, True), params)
    if not parallel:
        return _inserted(_steps_insert(shape), params)
    db.session.execute(_candidates_into_table(shape), params)
    inserted = _inserted(_CANDIDATES_INSERT, {})
    db.session.execute(text(f"DROP TABLE {CANDIDATES.name}"))
    return inserted


@lru_cache(maxsize=64)
def _steps_select(shape: tuple[tuple[str, int, int], ...], probe: bool = True, one_debtor: bool = False):
    """The candidates' SELECT for plans of this shape ((profile, rungs, before-due steps), as
    _ordered gives them), every value a parameter of _plan_steps; without `probe`, also those
    whose step has its row already (the INSERT from the temporary table probes); `one_debtor`:
    the invoices of the debtor bound as `debtor` only.

    The chosen step's id, position and rung are CASE expressions over the invoice's rung and
    the steps' cutoffs, and its code and status CASEs on that id: no join with dunning_step. So
    PostgreSQL estimates the candidates right (a join on a CASE is guessed at a small fraction
    of them, which makes it probe the reminders once per candidate where a hash anti-join is
    cheaper). The foreign key still checks every step id inserted."""
    reached, sent_on = Invoice.rung_reached, Invoice.rung_sent_on

    def due(i, j, rungs_n):
        """Step j of plan i is due: rung 1 (j = 0) or a before-due step (j >= rungs_n) on an
        invoice that reached no rung (a before-due step unless a notice went out on or after its
        day), rung j + 1 on one standing on rung j, sent long enough ago."""
        on_time = Invoice.due_date <= bindparam(f"cut_{i}_{j}", type_=Date)
        if j >= rungs_n:
            return and_(reached == 0, on_time, or_(sent_on.is_(None), _DaysBetween(sent_on, Invoice.due_date)
                                                    < bindparam(f"off_{i}_{j}", type_=Integer)))
        if j == 0:
            return and_(reached == 0, on_time)
        return and_(reached == j, on_time, sent_on <= bindparam(f"sent_{i}_{j}", type_=Date))

    def chosen(value):
        """value(i, j) of the step due: per plan, a CASE in _ordered's order (the first due one
        wins: rung 1 before the courtesy notice); a CASE on the debtor's profile picks the plan.
        Only debtors whose profile has a plan of its own are joined: the others (NULL profile)
        fall to the standard plan. NULL when no step is due."""
        by_plan = [case(*[(due(i, j, r), value(i, j)) for j in range(r + b)]) if r + b else null()
                   for i, (_p, r, b) in enumerate(shape)]
        own = {profile: by_plan[i] for i, (profile, _r, _b) in enumerate(shape) if profile != "standard"}
        fallback = by_plan[-1] if shape[-1][0] == "standard" else null()
        return case(own, value=Debtor.profile, else_=fallback) if own else fallback

    def param(name, type_):
        return lambda i, j: bindparam(f"{name}_{i}_{j}", type_=type_)

    each = [(i, j) for i, (_p, r, b) in enumerate(shape) for j in range(r + b)]
    step_id = chosen(param("id", Integer))
    position = chosen(param("pos", Integer))
    rung = chosen(param("rung", Integer))
    code = case({bindparam(f"id_{i}_{j}", type_=Integer): bindparam(f"code_{i}_{j}", type_=String) for i, j in each},
                value=step_id)
    status = case({bindparam(f"id_{i}_{j}", type_=Integer): bindparam(f"status_{i}_{j}", type_=String)
                   for i, j in each}, value=step_id)
    day = bindparam("day", type_=Date)
    # The chosen step already has its row (planned, awaiting approval, sent, failed, skipped):
    # one probe of the unique (invoice_id, step_code) index. A cancelled row does not count: the
    # insert plans it again.
    planned = exists().where(Reminder.invoice_id == Invoice.id, Reminder.step_code == code,
                             Reminder.status != "cancelled")
    values = (Invoice.creditor_id, Invoice.debtor_id, Invoice.id, step_id, code, position, rung, day, status,
              literal(0), literal(0), bindparam("now", type_=Reminder.created_at.type))
    own = [profile for profile, _r, _b in shape if profile != "standard"]
    return (select(*(v.label(c) for v, c in zip(values, COLUMNS)))
            # Only debtors whose profile has a plan of its own, usually few: a small hash table
            # instead of every debtor. The others get the standard plan.
            .outerjoin(Debtor, and_(Debtor.id == Invoice.debtor_id, Debtor.profile.in_(own)))
            # Not even the earliest step is due for invoices due after `earliest`: filtered
            # before any join.
            .where(Invoice.creditor_id == bindparam("creditor", type_=Integer),
                   Invoice.due_date <= bindparam("earliest", type_=Date), step_id.is_not(None),
                   remindable(day), *([~planned] if probe else []),
                   *([Invoice.debtor_id == bindparam("debtor", type_=Integer)] if one_debtor else []))
            # The sort reads every candidate before the first row is written, so the probes never
            # walk the rows this statement inserts: with an empty or unanalysed reminder table
            # PostgreSQL probes it by seq scan, quadratic without this.
            .order_by(Invoice.id))


@lru_cache(maxsize=32)
def _steps_insert(shape, one_debtor: bool = False):
    return _InsertNew(_steps_select(shape, one_debtor=one_debtor), replan=True)


@lru_cache(maxsize=32)
def _candidates_into_table(shape):
    """PostgreSQL: the invoices whose row names a step due, selected first into a temporary
    table; the INSERT then probes the reminders for those only (_CANDIDATES_INSERT).

    PostgreSQL never runs the SELECT of an INSERT ... SELECT in parallel, but it does run that
    of a CREATE TABLE ... AS in parallel: reading the open invoices (most of the work before the
    writes) is then shared with the parallel workers (max_parallel_workers_per_gather). The INSERT
    probes each candidate once (a quiet day: the steps awaiting approval; a busy one: the day's
    reminders too), never a pass over every reminder. Same transaction;
    each statement sees the data committed when it starts (READ COMMITTED), as one statement
    did, and the unique (invoice, step) index still decides. On an error the rollback drops the
    temporary table with the rest."""
    return _CreateTempAs(CANDIDATES.name, _steps_select(shape, probe=False))


_CANDIDATE = CANDIDATES.alias("c")
# One probe of the unique (invoice, step) index per candidate. The OFFSET 0 keeps PostgreSQL from
# turning the NOT EXISTS into an anti-join, which it would answer with a hash of every reminder
# (on one core: the INSERT's SELECT is not run in parallel) whenever it guesses the candidates
# at more than a few thousand, though they are always few beside the reminders of a ledger
# in its steady state. Sorted (invoice order: locality in the index), so every candidate is
# probed before the first row is written and the probes never walk the rows being inserted.
_CANDIDATES_INSERT = _InsertNew(
    select(*(_CANDIDATE.c[c] for c in COLUMNS))
    .where(~select(literal(1)).where(Reminder.invoice_id == _CANDIDATE.c.invoice_id,
                                     Reminder.step_code == _CANDIDATE.c.step_code, Reminder.status != "cancelled")
           .offset(0).exists())
    .order_by(_CANDIDATE.c.invoice_id), replan=True)


def _record_awaiting(creditor_id: int, now) -> int:
    """One event per reminder this run put in the approval list, written by the database in one
    statement (a first run over a large backlog must not build an object per reminder); their
    number is its row count."""
    dialect = db.session.get_bind().dialect.name
    return db.session.execute(_awaiting_events(dialect), {"creditor": creditor_id, "now": now},
                              execution_options={"preserve_rowcount": True}).rowcount


@lru_cache(maxsize=2)
def _awaiting_events(dialect: str):
    json_object = func.json_build_object if dialect == "postgresql" else func.json_object
    now = bindparam("now", type_=Reminder.created_at.type)
    rows = (select(Reminder.creditor_id, Reminder.debtor_id, Reminder.invoice_id,
                   literal("reminder.awaiting_approval"), literal("system"), now,
                   json_object("step", Reminder.step_code, "date", cast(Reminder.dunning_date, String)))
            .where(Reminder.creditor_id == bindparam("creditor", type_=Integer), Reminder.created_at == now,
                   Reminder.status == "awaiting_approval"))
    return insert(Event.__table__).from_select(["creditor_id", "debtor_id", "invoice_id", "type", "actor", "at", "data"],
                                               rows)


def _plan_thank_yous(creditor: Creditor, day: date, now) -> int:
    """Once per invoice whose balance reached zero recently, by any path (charges items have no
    thank-you of their own)."""
    return _inserted(_THANK_YOUS, {"creditor": creditor.id, "day": day, "now": now,
                                   "since": now - timedelta(days=THANK_YOU_WINDOW_DAYS)})


_CHARGES = Invoice.__table__.alias("charges")
_THANK_YOUS = _InsertNew(
    select(Invoice.creditor_id, Invoice.debtor_id, Invoice.id, null(), literal("thank_you"), literal(0), null(),
           bindparam("day", type_=Date), literal("planned"), literal(0), literal(0),
           bindparam("now", type_=Reminder.created_at.type))
    .where(Invoice.creditor_id == bindparam("creditor", type_=Integer), Invoice.status == "paid",
           Invoice.kind == "invoice",
           Invoice.updated_at >= bindparam("since", type_=Invoice.updated_at.type),
           ~exists().where(Reminder.invoice_id == Invoice.id, Reminder.step_code == "thank_you"),
           # charges items are never thanked; their invoice only once they are paid or waived
           # (charge_items.touch_charged brings it back into the window then)
           Invoice.kind == "invoice",
           # (NOT IN, uncorrelated: one hashed pass over the open items, whatever the statistics say)
           Invoice.id.not_in(select(_CHARGES.c.charged_invoice_id).where(
               _CHARGES.c.creditor_id == bindparam("creditor", type_=Integer),
               _CHARGES.c.status.in_(OPEN_STATUSES), _CHARGES.c.charged_invoice_id.is_not(None)))))



def preview(creditor: Creditor, day: date) -> list[tuple[int, int, str, str]]:
    """What plan_day would plan on `day` now, recorded nowhere: its own statements run inside a
    savepoint that is rolled back. (debtor id, invoice id, step code, status) per reminder."""
    plans = plans_for(creditor.id)
    if not PROFILE_OFFSETS.keys() <= {p.profile for p in plans}:
        ensure_default_plans(creditor.id)  # as plan_day does (the creditor's plans, not the day's)
        plans = plans_for(creditor.id)
    now = utcnow()
    savepoint = db.session.begin_nested()
    try:
        _plan_steps(creditor, plans, day, now, False)
        _plan_thank_yous(creditor, day, now)
        return [tuple(r) for r in db.session.execute(
            select(Reminder.debtor_id, Reminder.invoice_id, Reminder.step_code, Reminder.status)
            .where(Reminder.creditor_id == creditor.id, Reminder.created_at == now))]
    finally:
        savepoint.rollback()
