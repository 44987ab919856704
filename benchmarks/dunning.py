"""Benchmark of the dunning engine: the planner against a raw scan, its memory, and the outbox
against a raw smtplib loop.

For each size (open invoices; debtors = invoices / 10):

1. Creates a fresh PostgreSQL database, migrates it, gives one creditor its default plans and
   loads debtors, open invoices and their reminder history with COPY, then ANALYZE. Due dates
   are spread around the benchmark date (40 % not yet due, 60 % overdue with an exponential
   age of mean 35 days) and every invoice already has the reminders the ladder sent it before
   that date, with its rung and the day it was sent (rung 0 for a courtesy notice, as
   portal/services/ladder.py records it) (except 1 %, "loaded late", which the
   planner starts on the first rung), so the planner sees a steady-state day: only invoices
   whose next step falls due today are planned.
2. Times the raw baseline (`SELECT id, debtor_id, due_date FROM invoice WHERE creditor_id = %s
   AND status IN ('open', 'partially_paid')`, every row fetched; median of --raw-repeats after a
   warm-up) and `planner.plan_day` alone, in a child process (app context on that database),
   after a plan_day for a creditor without invoices in the same process (as `dunning run` over
   several creditors, or a Celery worker, runs: only a process's first creditor pays for
   SQLAlchemy compiling the statements; that first run's time is printed apart).
   Reports both times, their ratio, µs per invoice and the reminders planned. Goals (printed,
   never enforced): planner <= 5x raw scan at the largest size, µs per invoice flat within
   +-50 % of the median across sizes.
3. Runs the planner again (after deleting what the first run planned) in a child process
   under tracemalloc: tracemalloc peak of plan_day and the child's peak RSS (VmHWM; its
   ru_maxrss is printed too, but on Linux it inherits the parent's peak through fork/exec).
   Goal: <= 500 MB.
4. On the last size (--outbox-on), a second creditor with --outbox-messages debtors gets one
   reminder each, planned and composed (compose timed, for information); then the same number
   of messages (the very same bytes) are sent with a raw smtplib loop over one connection, and
   the outbox is sent with outbox.send_pending, both to one aiosmtpd server running in its own
   process, in turns (--outbox-rounds, 3). Messages/s for each (median of the rounds) and the
   ratio of the medians (goal >= 0.7). For attribution, the raw loop is
   also run writing the final dot separately (as outbox._deliver does), with and without
   TCP_NODELAY, and (the design's ceiling) with one durable autocommit INSERT before each dot
   (what the outbox's handover is); --outbox-diagnose re-sends the outbox with TCP_NODELAY
   patched onto its socket.
5. Drops every database whatever happens. Prints human-readable lines, then one JSON line.
   Exit 0 unless something errors: timings are never enforced.

    .venv/bin/python benchmarks/dunning.py [--sizes 10000,100000,1000000] [--outbox-messages 2000]
        [--explain] [--outbox-diagnose] [--extra-sql "CREATE INDEX ..."] [--no-history]

With --day-work, the day's work of `dunning run` and its empty run instead (benchmarks/dunning_day.py):

    .venv/bin/python benchmarks/dunning.py --day-work [--sizes 20000,200000] [--empty-runs 5]
        [--smtp-rounds 3] [--profile FILE] [--db-prefix relance_bench]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import random
import resource
import secrets
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from functools import lru_cache
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import psycopg  # noqa: E402

PLANNER_RATIO_GOAL = 5.0
FLATNESS_GOAL = 0.5  # +-50 %
MEMORY_GOAL_MB = 500
OUTBOX_RATIO_GOAL = 0.7
SEED = 20261123

# Debtor mix: mostly standard; every profile has a default plan.
PROFILES = [("standard", 0.85), ("key_account", 0.07), ("risky", 0.05), ("public_sector", 0.03)]
NOT_DUE_SHARE = 0.40       # due in 1..30 days
OVERDUE_MEAN_AGE = 35.0    # days, exponential, capped
MAX_AGE = 365
HISTORY_GAP = 0.01         # invoices without their reminder history (loaded late)


def log(msg: str = "") -> None:
    print(msg, flush=True)


def fmt_s(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


# --- databases -----------------------------------------------------------------------------

from bench_db import create_database, drop_database  # noqa: E402


@contextmanager
def recorded(pg_url: str, dbs: list[str], figures: dict):
    """Around a whole run: whatever happens, drop the databases still there and print the
    figures as one JSON line, with what failed (figures["ok"])."""
    failures: list[str] = []
    try:
        yield
    except BaseException as e:
        failures.append(f"{type(e).__name__}: {e}")
        raise
    finally:
        for name in list(dbs):
            try:
                drop_database(pg_url, name)
                log(f"dropped database {name}")
            except Exception as e:  # noqa: BLE001
                failures.append(f"drop {name}: {e}")
        figures["failures"] = failures
        figures["ok"] = not failures
        print(json.dumps(figures), flush=True)


def make_app(db_url: str, secret: str, **extra):
    from portal import create_app

    return create_app({"DATABASE_URL": db_url, "SECRET_KEY": secret, "RATELIMIT_ENABLED": False,
                       "RATELIMIT_STORAGE_URI": "memory://", "PORTAL_BASE_URL": "http://127.0.0.1:5000",
                       **extra})


# --- data ----------------------------------------------------------------------------------

def _ts(d: date, hour: int = 7) -> str:
    return datetime.combine(d, dtime(hour), tzinfo=timezone.utc).isoformat()


def _copy(conn, table: str, columns: list[str], lines) -> int:
    """COPY text-format lines (already tab-separated, no escaping needed) in chunks."""
    n = 0
    with conn.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
            buf = io.StringIO()
            for line in lines:
                buf.write(line)
                n += 1
                if n % 50_000 == 0:
                    cp.write(buf.getvalue())
                    buf = io.StringIO()
            cp.write(buf.getvalue())
    return n


def copy_creditor(conn, name: str, email: str) -> int:
    now = datetime.now(timezone.utc).isoformat()
    _copy(conn, "creditor", ["name", "email", "currency", "timezone", "language", "legal_name", "iban", "bic",
                             "payment_terms_days", "formal_notice_days", "dunning_time", "created_at"],
          [f"{name}\t{email}\tEUR\tEurope/Paris\tfr\t{name}\tFR7630006000011234567890189\tAGRIFRPP\t"
           f"30\t8\t08:30\t{now}\n"])
    return conn.execute("SELECT max(id) FROM creditor").fetchone()[0]


def plan_steps(app, creditor_id: int) -> dict[str, list[tuple[int, str, int, int]]]:
    """ensure_default_plans, then profile -> [(step id, code, position, offset)] by position."""
    from portal.extensions import db
    from portal.services.plans import ensure_default_plans, plans_for

    with app.app_context():
        ensure_default_plans(creditor_id)
        out = {p.profile: [(s.id, s.code, s.position, s.offset_days) for s in sorted(p.steps, key=lambda s: s.position)]
               for p in plans_for(creditor_id)}
        db.session.remove()
    return out


@lru_cache(maxsize=None)
def ladder_history(plan: tuple[tuple[int, str, int, int], ...], due: date, day: date) -> tuple:
    """What the ladder (domain/schedule.py) sent an invoice due on `due` before `day`, each step
    on the first day it was due: ((step id, code, position, rung or None, day sent), ...). The
    steps before the due date each on their day; rung 1 on its day, rung k + 1 on its day or
    max(7, gap) days after rung k, whichever is later."""
    from portal.domain.schedule import Step, rung_gap

    sent = [(step_id, code, position, None, due + timedelta(days=offset))
            for step_id, code, position, offset in plan if offset <= 0]
    rungs = [s for s in plan if s[3] > 0]
    when = None
    for k, (step_id, code, position, offset) in enumerate(rungs):
        when = due + timedelta(days=offset)
        if k:
            lower = rungs[k - 1]
            gap = rung_gap(Step(lower[1], lower[2], lower[3]), Step(code, position, offset))
            when = max(when, sent[-1][4] + timedelta(days=gap))
        sent.append((step_id, code, position, k + 1, when))
    return tuple(s for s in sent if s[4] < day)


def load_main(conn, creditor_id: int, n_invoices: int, day: date, steps: dict, history: bool,
              rng: random.Random) -> dict:
    """Debtors, open invoices and their reminder history, with COPY (FK triggers off while
    loading: the rows are consistent by construction)."""
    n_debtors = max(1, n_invoices // 10)
    now = datetime.now(timezone.utc).isoformat()
    conn.execute("SET session_replication_role = replica")

    profiles, weights = zip(*PROFILES)
    debtor_profile = rng.choices(profiles, weights, k=n_debtors)

    def debtor_lines():
        for i in range(n_debtors):
            email = f"d{i:07d}@example.com" if rng.random() < 0.95 else r"\N"
            lang = "fr" if rng.random() < 0.8 else "en"
            kind = "business" if rng.random() < 0.9 else "consumer"
            yield (f"{creditor_id}\tD{i:07d}\tDébiteur {i:07d} SARL\t{email}\t{lang}\t{debtor_profile[i]}\t"
                   f"{kind}\t{now}\t{now}\n")

    t0 = time.perf_counter()
    _copy(conn, "debtor", ["creditor_id", "ref", "name", "email", "language", "profile", "kind", "created_at",
                           "updated_at"], debtor_lines())
    ids = dict(conn.execute("SELECT ref, id FROM debtor WHERE creditor_id = %s", (creditor_id,)).fetchall())
    debtor_ids = [ids[f"D{i:07d}"] for i in range(n_debtors)]
    t_debtors = time.perf_counter() - t0

    # Invoice ages (benchmark day - due date) and debtors, kept for the reminder history.
    ages = []
    owners = []
    for _ in range(n_invoices):
        if rng.random() < NOT_DUE_SHARE:
            ages.append(-rng.randint(1, 30))
        else:
            ages.append(min(MAX_AGE, int(rng.expovariate(1 / OVERDUE_MEAN_AGE))))
        owners.append(rng.randrange(n_debtors))

    # Each invoice's history: the reminders it was sent before `day` as the ladder sends them
    # (domain/schedule.py), except the 1 % loaded late; its rung and the day it was sent.
    histories = [[] if not history or rng.random() < HISTORY_GAP
                 else ladder_history(tuple(steps[debtor_profile[owners[i]]]), day - timedelta(days=ages[i]), day)
                 for i in range(n_invoices)]

    def invoice_lines():
        for i in range(n_invoices):
            due = day - timedelta(days=ages[i])
            issue = due - timedelta(days=30)
            amount = rng.randint(5_000, 500_000)
            created = _ts(issue)
            # The rung reached and the day it was sent; a courtesy notice is rung 0 (ladder_rung).
            sent = [(rung or 0, when) for *_s, rung, when in histories[i]]
            reached, sent_on = sent[-1] if sent else (0, None)
            yield (f"{creditor_id}\t{debtor_ids[owners[i]]}\tF{i:08d}\t{issue.isoformat()}\t{due.isoformat()}\t"
                   f"{amount}\t0\tEUR\topen\tf\t{created}\t{created}\t{reached}\t{sent_on or chr(92) + 'N'}\n")

    t0 = time.perf_counter()
    _copy(conn, "invoice", ["creditor_id", "debtor_id", "number", "issue_date", "due_date", "amount",
                            "amount_paid", "currency", "status", "disputed", "created_at", "updated_at",
                            "rung_reached", "rung_sent_on"],
          invoice_lines())
    t_invoices = time.perf_counter() - t0
    first_id = conn.execute("SELECT min(id) FROM invoice WHERE creditor_id = %s", (creditor_id,)).fetchone()[0]

    n_history = 0
    t_history = 0.0
    if history:
        def reminder_lines():
            for i in range(n_invoices):
                d = debtor_ids[owners[i]]
                for step_id, code, position, rung, when in histories[i]:
                    yield (f"{creditor_id}\t{d}\t{first_id + i}\t{step_id}\t{code}\t{position}\t"
                           f"{rung or chr(92) + 'N'}\t{when.isoformat()}\tsent\t0\t0\t{_ts(when)}\n")

        t0 = time.perf_counter()
        n_history = _copy(conn, "reminder", ["creditor_id", "debtor_id", "invoice_id", "step_id", "step_code",
                                             "position", "rung", "dunning_date", "status", "interest", "indemnity",
                                             "created_at"], reminder_lines())
        t_history = time.perf_counter() - t0
    conn.execute("SET session_replication_role = DEFAULT")
    conn.commit()

    # Expected plan for the day (steady state): invoices whose age equals a step's offset.
    return {"debtors": n_debtors, "invoices": n_invoices, "history_reminders": n_history,
            "copy_s": {"debtor": round(t_debtors, 2), "invoice": round(t_invoices, 2),
                       "reminder": round(t_history, 2)}}


def load_outbox_sample(conn, creditor_id: int, n_debtors: int, day: date, rng: random.Random) -> None:
    """A creditor of its own for the outbox: every debtor (standard, e-mail) has 1-3 invoices
    due yesterday, so each gets one reminder_1 message today."""
    now = datetime.now(timezone.utc).isoformat()
    conn.execute("SET session_replication_role = replica")
    _copy(conn, "debtor", ["creditor_id", "ref", "name", "email", "language", "profile", "kind", "created_at",
                           "updated_at"],
          (f"{creditor_id}\tO{i:06d}\tClient {i:06d} SAS\to{i:06d}@example.org\t{'fr' if i % 5 else 'en'}\t"
           f"standard\tbusiness\t{now}\t{now}\n" for i in range(n_debtors)))
    ids = dict(conn.execute("SELECT ref, id FROM debtor WHERE creditor_id = %s", (creditor_id,)).fetchall())
    due = day - timedelta(days=1)
    issue = due - timedelta(days=30)
    lines = []
    k = 0
    for i in range(n_debtors):
        for _ in range(rng.randint(1, 3)):
            k += 1
            lines.append(f"{creditor_id}\t{ids[f'O{i:06d}']}\tO{k:08d}\t{issue}\t{due}\t{rng.randint(5_000, 500_000)}"
                         f"\t0\tEUR\topen\tf\t{_ts(issue)}\t{_ts(issue)}\n")
    _copy(conn, "invoice", ["creditor_id", "debtor_id", "number", "issue_date", "due_date", "amount",
                            "amount_paid", "currency", "status", "disputed", "created_at", "updated_at"], lines)
    conn.execute("SET session_replication_role = DEFAULT")
    conn.commit()


def analyze(admin_db_url: str) -> None:
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# --- raw scan ------------------------------------------------------------------------------

RAW_SQL = ("SELECT id, debtor_id, due_date FROM invoice "
           "WHERE creditor_id = %s AND status IN ('open', 'partially_paid')")


def raw_scan(db_url: str, creditor_id: int, repeats: int) -> tuple[int, list[float]]:
    times = []
    rows = 0
    with psycopg.connect(db_url) as conn:
        for i in range(repeats + 1):  # the first is a warm-up
            t0 = time.perf_counter()
            with conn.cursor() as cur:
                cur.execute(RAW_SQL, (creditor_id,))
                rows = len(cur.fetchall())
            dt = time.perf_counter() - t0
            conn.rollback()
            if i:
                times.append(dt)
    return rows, times


# --- planner (child process) ---------------------------------------------------------------

def run_child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=str(ROOT))
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def vm_hwm_mb() -> float | None:
    """Peak RSS of this process's own address space (Linux VmHWM). Unlike ru_maxrss, it does not
    carry over the parent's peak through fork/exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def child_planner(db_url: str, secret: str, creditor_id: int, day: date, mode: str, warm_id: int) -> None:
    """One plan_day in a fresh process, after one for the warm-up creditor (no invoices): as in
    `dunning run` over several creditors or a Celery worker, the measured creditor is not the
    process's first, whose extra cost (SQLAlchemy compiling the statements, loading mappers) is
    reported apart as first_s. mode: time | memory | explain. Prints one JSON line."""
    import tracemalloc

    from sqlalchemy import event, text

    from dunning_jobs import planner
    from portal.extensions import db
    from portal.models import Creditor

    app = make_app(db_url, secret)
    out: dict = {"mode": mode}
    with app.app_context():
        creditor = db.session.get(Creditor, creditor_id)
        db.session.execute(text("SELECT 1"))
        db.session.commit()
        t0 = time.perf_counter()
        planner.plan_day(db.session.get(Creditor, warm_id), day)
        out["first_s"] = time.perf_counter() - t0
        creditor = db.session.get(Creditor, creditor_id)
        engine = db.engine
        statements: list[dict] = []
        starts: dict = {}

        def before(conn, cursor, statement, parameters, context, executemany):
            starts[id(cursor)] = time.perf_counter()
            if mode == "explain" and is_planner_write(statement):
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, SETTINGS) " + statement, parameters)
                plan = [r[0] for r in cursor.fetchall()]
                statements.append({"sql": statement, "params": {k: str(v) for k, v in (parameters or {}).items()},
                                   "plan": plan})
                if statement.lstrip().upper().startswith("CREATE TEMPORARY TABLE"):
                    # EXPLAIN ANALYZE created it: drop it so that the statement itself runs as usual.
                    cursor.execute("DROP TABLE planner_candidate")

        def after(conn, cursor, statement, parameters, context, executemany):
            if mode == "explain":
                return
            dt = time.perf_counter() - starts.pop(id(cursor), time.perf_counter())
            label = step_label(statement) if is_planner_write(statement) else None
            statements.append({"sql": " ".join(statement.split())[:90], "label": label, "s": dt,
                               "rows": cursor.rowcount})

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        hwm_before = vm_hwm_mb()
        if mode == "memory":
            tracemalloc.start()
        t0 = time.perf_counter()
        planned, awaiting = planner.plan_day(creditor, day)
        elapsed = time.perf_counter() - t0
        if mode == "memory":
            _cur, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            out["tracemalloc_peak_mb"] = round(peak / 2**20, 2)
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
        out.update(seconds=elapsed, planned=planned, awaiting=awaiting,
                   maxrss_before_mb=round(rss_before / 1024, 1),
                   maxrss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                   hwm_before_mb=hwm_before, hwm_mb=vm_hwm_mb(),
                   statements=statements)
        db.session.remove()
    print(json.dumps(out), flush=True)


def is_planner_write(statement: str) -> bool:
    """The planner's INSERT..SELECT statements, and on PostgreSQL the CREATE TEMPORARY TABLE ... AS
    that selects the steps' candidates before they are inserted."""
    head = statement.lstrip().upper()
    return head.startswith("INSERT INTO REMINDER") or head.startswith("CREATE TEMPORARY TABLE PLANNER_CANDIDATE")


def step_label(statement: str) -> str:
    """Which planner statement this is: the steps of every plan (one statement, or on PostgreSQL
    their selection into a temporary table, then its insert) or the thank-yous."""
    if statement.lstrip().upper().startswith("CREATE TEMPORARY TABLE"):
        return "steps select"
    if "planner_candidate" in statement:
        return "steps insert"
    return "steps" if "CASE" in statement else "thank_you"


def reset_planned(db_url: str, day: date) -> int:
    """Undo a plan_day (what it planned for `day` and its approval events) for the next run."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        n = conn.execute("DELETE FROM reminder WHERE dunning_date = %s", (day,)).rowcount
        conn.execute("DELETE FROM event WHERE type = 'reminder.awaiting_approval'")
        conn.execute("VACUUM ANALYZE reminder")
        conn.execute("VACUUM ANALYZE event")
    return n


def planner_breakdown(statements: list[dict]) -> list[dict]:
    ins = [s for s in statements if s.get("label") is not None]
    return sorted(ins, key=lambda s: -s["s"])


# --- SMTP ----------------------------------------------------------------------------------

def child_smtp(port: int) -> None:
    """The aiosmtpd test server in its own process; stdin commands: count, clear, quit."""
    from tests.fakes.smtp_server import SmtpServer

    server = SmtpServer(port).start()
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "count":
                with server.handler.lock:
                    msgs = list(server.handler.messages)
                print(json.dumps({"count": len(msgs), "bytes": sum(len(m.raw) for m in msgs)}), flush=True)
            elif cmd == "clear":
                server.handler.take()
                print("ok", flush=True)
            elif cmd.startswith("dump "):  # what was received, as (sender, recipient, bytes), then cleared
                with open(cmd[5:], "wb") as f:
                    pickle.dump([(m.mail_from, m.rcpt_tos[0], m.raw) for m in server.handler.take()], f)
                print("ok", flush=True)
            elif cmd == "quit":
                break
    finally:
        server.stop()


class SmtpSink:
    def __init__(self):
        from tests.fakes.smtp_server import free_port

        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, __file__, "--child-smtp", str(self.port)], cwd=str(ROOT),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"SMTP server did not start: {line!r}")

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def _cmd(self, cmd: str) -> str:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def count(self) -> dict:
        return json.loads(self._cmd("count"))

    def clear(self) -> None:
        self._cmd("clear")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def raw_loop(port: int, sender: str, payloads: list, split_dot: bool = False, nodelay: bool = False,
             commit_url: str | None = None) -> float:
    """Send `payloads` over one connection. split_dot: MAIL/RCPT/DATA, body, then the final
    dot in a separate write, as outbox._deliver does (no database work in between). commit_url:
    before each dot, one durable INSERT on that database in autocommit (raw psycopg), the least
    that sending exactly once needs and what the outbox's handover (outbox_records.HandOver) does: the
    ceiling of its design."""
    db = psycopg.connect(commit_url, autocommit=True) if commit_url else None
    if db is not None:
        # A real table, not a temporary one (which skips the WAL): each COMMIT waits for the disk.
        db.execute("CREATE TABLE IF NOT EXISTS bench_ceiling (n int PRIMARY KEY)")
    t0 = time.perf_counter()
    conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
    if nodelay:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.ehlo()
    for n, (to, body) in enumerate(payloads):
        if not split_dot:
            conn.sendmail(sender, [to], body)
            continue
        conn.mail(sender)
        conn.rcpt(to)
        conn.docmd("DATA")
        data = smtplib._quote_periods(body)  # noqa: SLF001
        conn.send(data if data.endswith(b"\r\n") else data + b"\r\n")
        if db is not None:
            db.execute("INSERT INTO bench_ceiling VALUES (%s)", (n,))
        conn.send(b".\r\n")
        code, resp = conn.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, resp)
    conn.quit()
    elapsed = time.perf_counter() - t0
    if db is not None:
        db.execute("DROP TABLE bench_ceiling")
        db.close()
    return elapsed


def reset_outbox(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE outbox_message SET status = 'pending', sent_at = NULL, attempts = 0, "
                     "next_attempt_at = now() - interval '1 minute' WHERE channel = 'email'")
        conn.execute("UPDATE reminder SET status = 'planned' WHERE message_id IS NOT NULL AND status = 'sent'")
        conn.execute("DELETE FROM event WHERE type IN ('reminder.sent', 'message.sent')")
        conn.execute("VACUUM ANALYZE outbox_message")  # each round starts as the first did
        conn.execute("VACUUM ANALYZE reminder")
        conn.execute("VACUUM ANALYZE event")


def send_outbox(app, sink, n: int, patch_nodelay: bool = False) -> float:
    from sqlalchemy import func, select

    from dunning_jobs import outbox
    from portal.extensions import db
    from portal.models import OutboxMessage

    original = outbox.connect
    if patch_nodelay:
        def connect(url, timeout=30):
            conn = original(url, timeout)
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn
        outbox.connect = connect
    try:
        with app.app_context():
            app.config["SMTP_URL"] = sink.url
            t0 = time.perf_counter()
            sent = outbox.send_pending()
            elapsed = time.perf_counter() - t0
            left = db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                     .where(OutboxMessage.status == "pending"))
            db.session.remove()
    finally:
        outbox.connect = original
    got = sink.count()
    if sent.sent != n or got["count"] != n or left:
        raise RuntimeError(f"outbox: sent {sent.sent}, failed {sent.failed}, deferred {sent.deferred}, "
                           f"server received {got['count']} of {n}, {left} left pending")
    sink.clear()
    return elapsed


def outbox_bench(app, db_url: str, day: date, n_debtors: int, rng: random.Random, diagnose: bool,
                 rounds: int) -> dict:
    from sqlalchemy import select

    from dunning_jobs import outbox, planner
    from portal.extensions import db
    from portal.models import Creditor, OutboxMessage
    from portal.services import reminders

    with psycopg.connect(db_url) as conn:
        creditor_id = copy_creditor(conn, "Outbox Bench SAS", "outbox@example.com")
        conn.commit()
        load_outbox_sample(conn, creditor_id, n_debtors, day, rng)
    res: dict = {"debtors": n_debtors}
    sink = SmtpSink()
    try:
        with app.app_context():
            creditor = db.session.get(Creditor, creditor_id)
            planned, _ = planner.plan_day(creditor, day)
            creditor = db.session.get(Creditor, creditor_id)
            t0 = time.perf_counter()
            composed = reminders.compose_day(creditor, day)
            res["compose_s"] = round(time.perf_counter() - t0, 3)
            res["composed"] = composed
            res["compose_per_s"] = round(composed / res["compose_s"], 1) if res["compose_s"] else None
            res["planned"] = planned
            # The very bytes the outbox will send, for the raw loop (built outside its timing).
            creditor = db.session.get(Creditor, creditor_id)
            pending = db.session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")
                                         .order_by(OutboxMessage.id)).all()
            sender = outbox._address(app.config["MAIL_FROM"])  # noqa: SLF001
            payloads = [(m.to_addr, reminders.smtp_bytes(m, creditor)) for m in pending]
            db.session.commit()
        n = len(payloads)
        res["messages"] = n
        res["avg_message_bytes"] = round(sum(len(b) for _, b in payloads) / n) if n else 0

        def checked_raw(**kw) -> float:
            dt = raw_loop(sink.port, sender, payloads, **kw)
            got = sink.count()
            if got["count"] != n:
                raise RuntimeError(f"raw loop {kw}: server received {got['count']} of {n}")
            sink.clear()
            return dt

        # Raw baseline (one connection, smtplib sendmail per message, the same bytes) and the
        # outbox (send_pending with SMTP_URL pointing at the same server), in turns: the ratio
        # of their medians, since one run of either swings by 20 % on this shared machine.
        raws, outs = [], []
        for r in range(rounds):
            if r:
                reset_outbox(db_url)
            raws.append(checked_raw())
            outs.append(send_outbox(app, sink, n))
        raw_s, outbox_s = statistics.median(raws), statistics.median(outs)
        res.update(raw_s=round(raw_s, 3), outbox_s=round(outbox_s, 3),
                   raw_per_s=round(n / raw_s, 1), outbox_per_s=round(n / outbox_s, 1),
                   ratio=round(raw_s / outbox_s, 3), rounds=rounds,
                   raw_rounds_per_s=[round(n / t, 1) for t in raws],
                   outbox_rounds_per_s=[round(n / t, 1) for t in outs])
        # Attribution (informational): the raw loop writing the final dot separately, as _deliver does.
        split_s = checked_raw(split_dot=True)
        split_nd_s = checked_raw(split_dot=True, nodelay=True)
        res["raw_split_dot_per_s"] = round(n / split_s, 1)
        res["raw_split_dot_nodelay_per_s"] = round(n / split_nd_s, 1)
        ceiling_s = checked_raw(split_dot=True, nodelay=True, commit_url=db_url)
        res["raw_commit_per_s"] = round(n / ceiling_s, 1)
        res["raw_commit_ratio"] = round(raw_s / ceiling_s, 3)
        if diagnose:
            reset_outbox(db_url)
            nd_s = send_outbox(app, sink, n, patch_nodelay=True)
            res["outbox_nodelay_per_s"] = round(n / nd_s, 1)
            res["outbox_nodelay_ratio"] = round(raw_s / nd_s, 3)
    finally:
        sink.stop()
    return res


# --- main ----------------------------------------------------------------------------------

def bench_size(args, size: int, secret: str, day: date, dbs: list, last: bool) -> dict:
    from portal.extensions import db

    from flask_migrate import upgrade

    rng = random.Random(SEED + size)
    name, db_url = create_database(args.pg_url, args.db_prefix)
    dbs.append(name)
    log(f"\n=== {size:,} open invoices — database {name} ===")
    app = make_app(db_url, secret)
    try:
        with app.app_context():
            upgrade()
            db.engine.dispose()
        with psycopg.connect(db_url) as conn:
            creditor_id = copy_creditor(conn, "Bench SARL", "bench@example.com")
            warm_id = copy_creditor(conn, "Warm-up SAS", "warm@example.com")  # planned first, empty
            conn.commit()
        steps = plan_steps(app, creditor_id)
        t0 = time.perf_counter()
        with psycopg.connect(db_url) as conn:
            loaded = load_main(conn, creditor_id, size, day, steps, not args.no_history, rng)
            for stmt in args.extra_sql:
                conn.execute(stmt)
                log(f"extra SQL: {stmt}")
            conn.commit()
        analyze(db_url)
        load_s = time.perf_counter() - t0
        with psycopg.connect(db_url) as conn:
            sizes = dict(conn.execute(
                "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class "
                "WHERE relname IN ('invoice', 'debtor', 'reminder')").fetchall())
        log(f"loaded {loaded['debtors']:,} debtors, {loaded['invoices']:,} invoices, "
            f"{loaded['history_reminders']:,} past reminders with COPY in {load_s:.1f}s incl. VACUUM ANALYZE "
            f"(copy {loaded['copy_s']}; sizes {sizes})")

        raw_rows, raw_all = raw_scan(db_url, creditor_id, args.raw_repeats)
        raw_s = min(raw_all)
        if raw_rows != size:
            raise RuntimeError(f"raw scan returned {raw_rows} rows, expected {size}")

        base = ["--child-planner", db_url, secret, str(creditor_id), day.isoformat()]
        runs = []
        for i in range(args.planner_repeats):
            if i:
                reset_planned(db_url, day)
            runs.append(run_child(base + ["time", str(warm_id)]))
        timing = min(runs, key=lambda r: r["seconds"])
        planner_s = timing["seconds"]
        ratio = planner_s / raw_s
        res = {"invoices": size, "debtors": loaded["debtors"], "history_reminders": loaded["history_reminders"],
               "load_s": round(load_s, 1), "loadavg_1m": round(os.getloadavg()[0], 2),
               "raw_s": round(raw_s, 4), "raw_median_s": round(statistics.median(raw_all), 4),
               "raw_runs_s": [round(t, 4) for t in raw_all],
               "planner_s": round(planner_s, 4), "planner_runs_s": [round(r["seconds"], 4) for r in runs],
               "ratio": round(ratio, 2), "raw_us_per_invoice": round(raw_s / size * 1e6, 3),
               "planner_us_per_invoice": round(planner_s / size * 1e6, 3),
               "planned": timing["planned"], "awaiting_approval": timing["awaiting"],
               "planned_share": round(timing["planned"] / size, 4),
               "first_creditor_s": round(min(r["first_s"] for r in runs), 4)}
        log(f"raw scan : {fmt_s(raw_s):>10}  {res['raw_us_per_invoice']:8.3f} µs/invoice  "
            f"({raw_rows:,} rows; best of runs {', '.join(fmt_s(t) for t in raw_all)})")
        log(f"planner  : {fmt_s(planner_s):>10}  {res['planner_us_per_invoice']:8.3f} µs/invoice  "
            f"({timing['planned']:,} reminders planned = {res['planned_share']:.1%} of invoices, "
            f"{timing['awaiting']:,} awaiting approval; best of runs {', '.join(fmt_s(r['seconds']) for r in runs)})")
        log(f"           (the process's first creditor, without invoices, planned just before: "
            f"{fmt_s(res['first_creditor_s'])}, SQLAlchemy compiling and loading, not counted above)")
        log(f"ratio planner/raw: {ratio:.2f}x (best vs best; load average {res['loadavg_1m']} on {os.cpu_count()} CPUs)")
        top = planner_breakdown(timing["statements"])
        sql_total = sum(s["s"] for s in timing["statements"])
        res["sql_s"] = round(sql_total, 4)
        res["insert_statements"] = len(top)
        res["slowest_inserts"] = [{"step": s["label"], "s": round(s["s"], 4)} for s in top[:5]]
        log(f"  {len(timing['statements'])} SQL statements, {fmt_s(sql_total)} in the database driver; "
            f"{len(top)} planner statements (INSERT..SELECT, CREATE TEMPORARY TABLE..AS), slowest: "
            + ", ".join(f"{s['label']} {fmt_s(s['s'])}" for s in top[:5]))

        # Memory: the same day again in a fresh process, under tracemalloc.
        reset_planned(db_url, day)
        mem = run_child(base + ["memory", str(warm_id)])
        if mem["planned"] != timing["planned"]:
            log(f"  note: memory run planned {mem['planned']} (timed run {timing['planned']})")
        res["memory"] = {k: mem[k] for k in ("tracemalloc_peak_mb", "hwm_before_mb", "hwm_mb", "maxrss_before_mb",
                                             "maxrss_mb", "seconds")}
        peak_rss = mem["hwm_mb"] if mem["hwm_mb"] is not None else mem["maxrss_mb"]
        res["memory"]["peak_rss_mb"] = peak_rss
        res["memory_ok"] = mem["tracemalloc_peak_mb"] <= MEMORY_GOAL_MB and peak_rss <= MEMORY_GOAL_MB
        log(f"memory   : tracemalloc peak {mem['tracemalloc_peak_mb']} MB during plan_day; planner process peak RSS "
            f"(VmHWM) {mem['hwm_mb']} MB, {mem['hwm_before_mb']} MB before plan_day (app and imports) -> goal <= "
            f"{MEMORY_GOAL_MB} MB {'met' if res['memory_ok'] else 'NOT met'}  [ru_maxrss {mem['maxrss_mb']} MB "
            f"includes the parent's peak inherited through fork/exec]")

        if args.explain:
            reset_planned(db_url, day)
            ex = run_child(base + ["explain", str(warm_id)])
            res["explain"] = explain_report(ex["statements"], args.explain_full)

        if last and args.outbox_messages:
            reset_planned(db_url, day)
            res["outbox"] = outbox_bench(app, db_url, day, args.outbox_messages, rng, args.outbox_diagnose,
                                         args.outbox_rounds)
            o = res["outbox"]
            log(f"outbox   : composed {o['composed']:,} messages in {o['compose_s']:.1f}s "
                f"({o['compose_per_s']}/s, not part of the ratio); {o['messages']:,} e-mails of "
                f"{o['avg_message_bytes']:,} bytes on average")
            log(f"  raw smtplib loop : {o['raw_per_s']:8.1f} msg/s ({o['raw_s']:.2f}s; median of rounds "
                f"{', '.join(map(str, o['raw_rounds_per_s']))} msg/s)")
            log(f"  outbox.send_pending: {o['outbox_per_s']:6.1f} msg/s ({o['outbox_s']:.2f}s; median of rounds "
                f"{', '.join(map(str, o['outbox_rounds_per_s']))} msg/s)")
            log(f"  ratio outbox/raw: {o['ratio']} -> goal >= {OUTBOX_RATIO_GOAL} "
                f"{'met' if o['ratio'] >= OUTBOX_RATIO_GOAL else 'NOT met'}")
            log(f"  (attribution) raw loop, final dot in its own write as _deliver does: "
                f"{o['raw_split_dot_per_s']} msg/s; the same with TCP_NODELAY: {o['raw_split_dot_nodelay_per_s']} msg/s")
            log(f"  (ceiling) that loop with one durable autocommit INSERT before each dot (raw psycopg, nothing "
                f"else): {o['raw_commit_per_s']} msg/s, {o['raw_commit_ratio']} of the raw loop")
            if "outbox_nodelay_per_s" in o:
                log(f"  (diagnosis) send_pending with TCP_NODELAY patched onto its socket: {o['outbox_nodelay_per_s']} "
                    f"msg/s, ratio {o['outbox_nodelay_ratio']}")
        return res
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if not args.keep:
            drop_database(args.pg_url, name)
            dbs.remove(name)
            log(f"dropped database {name}")
        else:
            dbs.remove(name)
            log(f"kept database {name} ({db_url})")


def explain_report(statements: list[dict], full: bool) -> list[dict]:
    out = []
    for s in statements:
        total = next((float(line.split(":")[1].split()[0]) for line in reversed(s["plan"])
                      if line.startswith("Execution Time")), None)
        label = step_label(s["sql"])
        out.append({"step": label, "ms": total, "plan": s["plan"]})
    log(f"EXPLAIN ANALYZE of the {len(out)} planner statements (ms): "
        + ", ".join(f"{o['step']} {o['ms']:.1f}" for o in out))
    worst = sorted(out, key=lambda o: -(o["ms"] or 0))
    for o in (out if full else worst[:1]):
        log(f"--- plan of {o['step']} ({o['ms']} ms) ---")
        for line in o["plan"]:
            log("  " + line)
    return [{"step": o["step"], "ms": o["ms"]} for o in out]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default=None,
                   help="open invoices per run, comma-separated (default 10000,100000,1000000; with --day-work "
                        "20000,200000)")
    p.add_argument("--day-work", action="store_true",
                   help="measure the day's work of `dunning run` (a run with work less an empty run, as CLI "
                        "processes) against a raw scan + a raw smtplib loop, and the empty run (benchmarks/dunning_day.py)")
    p.add_argument("--empty-runs", type=int, default=5, help="--day-work: empty runs timed (median; default 5)")
    p.add_argument("--smtp-rounds", type=int, default=3, help="--day-work: raw smtplib loops (median; default 3)")
    p.add_argument("--profile", metavar="FILE", default=None,
                   help="--day-work: run the day in-process under cProfile into FILE and print its hotspots instead")
    p.add_argument("--db-prefix", default="relance_bench", help="name prefix of the throw-away databases")
    p.add_argument("--day", default=None, help="benchmark date (default: today)")
    p.add_argument("--raw-repeats", type=int, default=5, help="measured raw scans after a warm-up (best; default 5)")
    p.add_argument("--planner-repeats", type=int, default=2, help="timed planner runs (best; default 2)")
    p.add_argument("--outbox-rounds", type=int, default=3,
                   help="raw loop and outbox sent in turns this many times; their medians are compared")
    p.add_argument("--outbox-diagnose", action="store_true",
                   help="also send the outbox again with TCP_NODELAY set on its SMTP socket (runtime patch, diagnosis only)")
    p.add_argument("--outbox-messages", type=int, default=2000,
                   help="debtors (= messages) for the outbox test on the last size; 0 to skip")
    p.add_argument("--no-history", action="store_true",
                   help="no past reminders: a first run that plans every due invoice (catch-up)")
    p.add_argument("--extra-sql", action="append", default=[],
                   help="SQL run after loading, before ANALYZE (e.g. an index to try); repeatable")
    p.add_argument("--explain", action="store_true",
                   help="EXPLAIN ANALYZE the planner's INSERT..SELECT (and CREATE TEMPORARY TABLE..AS) statements")
    p.add_argument("--explain-full", action="store_true", help="print every plan, not only the slowest")
    p.add_argument("--keep", action="store_true", help="keep the databases (debugging)")
    p.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="maintenance database URL used to create and drop the bench databases")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    default_sizes = "20000,200000" if args.day_work else "10000,100000,1000000"
    sizes = [int(s.replace("_", "")) for s in (args.sizes or default_sizes).split(",") if s.strip()]
    day = date.fromisoformat(args.day) if args.day else date.today()
    secret = secrets.token_urlsafe(32)
    if args.day_work:
        import dunning_day

        return dunning_day.main(args, sizes, secret, day)
    figures: dict = {"day": day.isoformat(), "sizes": sizes, "history": not args.no_history,
                     "extra_sql": args.extra_sql, "results": []}
    dbs: list[str] = []
    figures["cpus"] = os.cpu_count()
    figures["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    log(f"dunning benchmark, day {day}, sizes {', '.join(f'{s:,}' for s in sizes)}"
        f"{' (no reminder history: catch-up run)' if args.no_history else ''}; "
        f"load average {figures['loadavg_start']} on {os.cpu_count()} CPUs")
    with recorded(args.pg_url, dbs, figures):
        for i, size in enumerate(sizes):
            figures["results"].append(bench_size(args, size, secret, day, dbs, last=i == len(sizes) - 1))

        results = figures["results"]
        log("\n=== summary ===")
        log(f"{'invoices':>10} {'raw scan':>10} {'planner':>10} {'ratio':>7} {'raw µs/inv':>11} "
            f"{'plan µs/inv':>12} {'planned':>9} {'peak MB':>8} {'rss MB':>7}")
        for r in results:
            log(f"{r['invoices']:>10,} {fmt_s(r['raw_s']):>10} {fmt_s(r['planner_s']):>10} {r['ratio']:>6.2f}x "
                f"{r['raw_us_per_invoice']:>11.3f} {r['planner_us_per_invoice']:>12.3f} {r['planned']:>9,} "
                f"{r['memory']['tracemalloc_peak_mb']:>8} {r['memory']['peak_rss_mb']:>7}")
        top = results[-1]
        figures["planner_ratio_goal"] = PLANNER_RATIO_GOAL
        figures["planner_ratio_at_top"] = top["ratio"]
        figures["planner_ratio_met"] = top["ratio"] <= PLANNER_RATIO_GOAL
        log(f"planner/raw at {top['invoices']:,}: {top['ratio']:.2f}x -> goal <= {PLANNER_RATIO_GOAL:g}x "
            f"{'met' if figures['planner_ratio_met'] else 'NOT met'}")
        for key, label in (("planner_us_per_invoice", "planner"), ("raw_us_per_invoice", "raw scan")):
            values = [r[key] for r in results]
            med = statistics.median(values)
            dev = [round((v / med - 1) * 100, 1) for v in values]
            flat = all(abs(d) <= FLATNESS_GOAL * 100 for d in dev)
            figures[f"{key}_deviation_pct"] = dev
            if label == "planner":
                figures["planner_flat"] = flat
            log(f"{label} µs/invoice vs median ({med:.3f}): "
                + ", ".join(f"{r['invoices']:,}: {d:+.1f}%" for r, d in zip(results, dev))
                + (f" -> goal within +-{FLATNESS_GOAL:.0%} {'met' if flat else 'NOT met'}" if label == "planner" else ""))
        figures["memory_goal_mb"] = MEMORY_GOAL_MB
        figures["memory_met"] = all(r["memory_ok"] for r in results)
        log(f"planner memory: max tracemalloc peak {max(r['memory']['tracemalloc_peak_mb'] for r in results)} MB, "
            f"max planner process peak RSS {max(r['memory']['peak_rss_mb'] for r in results)} MB -> goal <= {MEMORY_GOAL_MB} MB "
            f"{'met' if figures['memory_met'] else 'NOT met'}")
        if "outbox" in top:
            o = top["outbox"]
            figures["outbox_ratio_goal"] = OUTBOX_RATIO_GOAL
            figures["outbox_ratio"] = o["ratio"]
            figures["outbox_met"] = o["ratio"] >= OUTBOX_RATIO_GOAL
            log(f"outbox/raw SMTP: {o['outbox_per_s']} vs {o['raw_per_s']} msg/s = {o['ratio']} -> goal >= "
                f"{OUTBOX_RATIO_GOAL} {'met' if figures['outbox_met'] else 'NOT met'}")
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-planner":
        _, _, url, key, cid, d, m, warm = sys.argv
        child_planner(url, key, int(cid), date.fromisoformat(d), m, int(warm))
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-smtp":
        child_smtp(int(sys.argv[2]))
    else:
        sys.exit(main())
