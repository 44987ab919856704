"""Benchmark of `import invoices` (CONTRACT §3) against a raw PostgreSQL COPY of the same CSV.

For each size (invoice rows; debtors = rows / 10), on a fresh PostgreSQL database (created from
--database-url, migrated, one creditor; dropped afterwards whatever happens):

1. writes a realistic CSV: one debtor per ~10 invoices, spread issue dates, due after 30 or 45
   days, amounts in EUR with cents, some quoted names with a comma, the optional columns
   debtor_language, debtor_phone and a two-line debtor_address;
2. raw COPY: `COPY t FROM STDIN (FORMAT csv, HEADER true)` of the same bytes into a plain table of
   text columns, through psycopg 3 (best of --copy-repeats);
3. the empty import: `relance import invoices` (else `flask --app app import invoices`) as a
   subprocess, a user's experience, of a file holding the header only; median of --empty-runs;
4. the import of the file, as a subprocess (wall time), then the same file again (an upsert of
   unchanged rows: nothing created, every invoice counted updated, no event but import.completed);
5. import's work = the import less the empty import; ratio = COPY time / import's work (goal
   >= 0.2, i.e. the import's work at most 5x the COPY). Rows/s of both;
6. for scale, the writes alone: the same invoices inserted again under other numbers with their
   invoice.created events (two INSERT ... SELECT, rolled back), what the invoice and event tables'
   indexes and foreign-key checks cost before any reading or checking; and the same writes with
   each table's keys only and no foreign-key check (a superuser's session_replication_role, the
   other indexes dropped in the rolled-back transaction): the least this data model writes.

Prints human-readable lines, then one JSON line; exit 0 unless something errors (timings are
never enforced).

    .venv/bin/python benchmarks/import.py [--sizes 20000,200000] [--database-url URL] [--empty-runs 3]
"""
from __future__ import annotations

import argparse
import compileall
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import psycopg  # noqa: E402

from bench_db import migrated_database  # noqa: E402
from dunning import copy_creditor, fmt_s, log, make_app, recorded  # noqa: E402
from dunning_day import cli_command, cli_env, run_command  # noqa: E402

RATIO_GOAL = 0.2
SEED = 20261206
HEADER = ("debtor_ref,debtor_name,debtor_email,invoice_number,issue_date,due_date,amount,currency,"
          "debtor_language,debtor_phone,debtor_address")
STREETS = ["rue de la République", "avenue Jean Jaurès", "boulevard Victor Hugo", "rue Pasteur", "place du Marché"]
CITIES = ["69003 Lyon", "75011 Paris", "33000 Bordeaux", "59000 Lille", "13001 Marseille", "44000 Nantes"]


def write_csv(path: Path, rows: int, rng: random.Random) -> int:
    """`rows` invoices of rows // 10 debtors, each picked at random; returns the debtors picked."""
    n_debtors = max(1, rows // 10)
    debtors = []
    for d in range(n_debtors):
        name = f"Client {d} SARL" if rng.random() < 0.8 else f'"Dupont, Fils & Cie {d}"'
        email = f"compta{d}@client{d}.example" if rng.random() < 0.9 else ""
        language = "en" if rng.random() < 0.1 else ("fr" if rng.random() < 0.5 else "")
        phone = f"+336{rng.randrange(10**7, 10**8)}" if rng.random() < 0.5 else ""
        address = (f'"{rng.randrange(1, 200)} {rng.choice(STREETS)}\n{rng.choice(CITIES)}"'
                   if rng.random() < 0.5 else "")
        debtors.append((f"C{d:06d},{name},{email}", f"{language},{phone},{address}"))
    start = date.today() - timedelta(days=400)
    used = set()
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(HEADER + "\n")
        for i in range(rows):
            d = rng.randrange(n_debtors)
            used.add(d)
            head, tail = debtors[d]
            issue = start + timedelta(days=rng.randrange(400))
            due = issue + timedelta(days=rng.choice((30, 45)))
            f.write(f"{head},FA-{i:08d},{issue},{due},{rng.randrange(1000, 2_500_000) / 100:.2f},EUR,{tail}\n")
    return len(used)


def raw_copy(db_url: str, path: Path, repeats: int) -> tuple[list[float], int]:
    """Times of each COPY, and the rows it took."""
    data = path.read_bytes()
    times = []
    with psycopg.connect(db_url) as conn:
        for _ in range(repeats):
            conn.execute("DROP TABLE IF EXISTS bench_copy")
            conn.execute("CREATE TABLE bench_copy (" + ", ".join(f"{c} text" for c in HEADER.split(",")) + ")")
            conn.commit()
            t0 = time.perf_counter()
            with conn.cursor().copy("COPY bench_copy FROM STDIN (FORMAT csv, HEADER true)") as copy:
                copy.write(data)
            conn.commit()
            times.append(time.perf_counter() - t0)
        copied = conn.execute("SELECT count(*) FROM bench_copy").fetchone()[0]
        conn.execute("DROP TABLE bench_copy")
        conn.commit()
    return times, copied


FLOOR_SQL = [
    "INSERT INTO invoice (creditor_id, debtor_id, number, issue_date, due_date, amount, amount_paid, currency, status, "
    "disputed, kind, rung_reached, created_at, updated_at) SELECT creditor_id, debtor_id, number || '+F1', issue_date, "
    "due_date, amount, 0, currency, 'open', false, 'invoice', 0, now(), now() FROM invoice WHERE creditor_id = %(c)s",
    "INSERT INTO event (creditor_id, debtor_id, invoice_id, type, actor, at, data) SELECT creditor_id, debtor_id, id, "
    "'invoice.created', 'import', now(), json_build_object('amount', amount, 'currency', currency, 'due_date', "
    "to_char(due_date, 'YYYY-MM-DD')) FROM invoice WHERE creditor_id = %(c)s AND number LIKE '%%+F1'",
]


def write_floor(db_url: str, creditor_id: int) -> float:
    """The writes alone: the same invoices again (other numbers) and their invoice.created events,
    two INSERT ... SELECT in one transaction, rolled back: what the table's indexes and foreign
    keys cost whatever reads and checks the rows."""
    with psycopg.connect(db_url) as conn:
        conn.execute("SET jit = off")
        t0 = time.perf_counter()
        for statement in FLOOR_SQL:
            conn.execute(statement, {"c": creditor_id})
        elapsed = time.perf_counter() - t0
        conn.rollback()
    return elapsed


# What any design storing these rows must write: the invoices with their primary key and unique
# (creditor, number) only, the events with their primary key only, no foreign-key check (no
# trigger: session_replication_role, a superuser's); the other indexes dropped in the same
# rolled-back transaction.
MINIMUM_SQL = [
    "SET LOCAL session_replication_role = replica",
    "ALTER TABLE reminder DROP CONSTRAINT fk_reminder_invoice_id_invoice",
    "ALTER TABLE invoice DROP CONSTRAINT uq_invoice_id_creditor_id_debtor_id",
    "DROP INDEX ix_invoice_debtor_id, ix_invoice_charged_invoice_id, ix_invoice_creditor_status_due, "
    "ix_event_creditor_id, ix_event_debtor_id",
]


def write_minimum(db_url: str, creditor_id: int) -> float | None:
    """The writes alone as write_floor times them, with no foreign-key check and no index but each
    table's keys: the least this data model writes. None when the role may not skip triggers."""
    with psycopg.connect(db_url) as conn:
        if not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
            return None
        conn.execute("SET jit = off")
        for statement in MINIMUM_SQL:
            conn.execute(statement)
        t0 = time.perf_counter()
        for statement in FLOOR_SQL:
            conn.execute(statement, {"c": creditor_id})
        elapsed = time.perf_counter() - t0
        conn.rollback()
    return elapsed


def run_import(env: dict, path: Path, email: str) -> tuple[float, dict]:
    return run_command(env, "import", "invoices", str(path), "--creditor", email)


def bench_size(args, size: int, secret: str, dbs: list, workdir: Path) -> dict:
    rng = random.Random(SEED + size)
    with migrated_database(args.database_url, args.db_prefix, dbs, make_app, secret, args.keep) as (name, db_url, _app):
        log(f"\n=== {size:,} invoice rows — database {name} ===")
        email = "bench@example.com"
        with psycopg.connect(db_url) as conn:
            creditor_id = copy_creditor(conn, "Bench SARL", email)
            conn.execute("INSERT INTO creditor_user (creditor_id, email, password_hash, notify, session_generation, "
                         "created_at) VALUES (%s, %s, 'x', 'immediate', 0, now())", (creditor_id, email))
            conn.execute("UPDATE creditor SET hold_dunning = true WHERE id = %s", (creditor_id,))
            conn.commit()
        path, empty = workdir / f"invoices_{size}.csv", workdir / "empty.csv"
        n_debtors = write_csv(path, size, rng)
        empty.write_text(HEADER + "\n", encoding="utf-8")
        log(f"CSV: {size:,} rows, {n_debtors:,} debtors, {path.stat().st_size / 1e6:.1f} MB")

        copies, copied = raw_copy(db_url, path, args.copy_repeats)
        if copied != size:
            raise RuntimeError(f"COPY took {copied} rows of {size}")
        copy_s = min(copies)
        env = cli_env(db_url, secret)
        empties = []
        for _ in range(args.empty_runs):
            t, res = run_import(env, empty, email)
            if res != {"rows": 0, "debtors_created": 0, "invoices_created": 0, "invoices_updated": 0}:
                raise RuntimeError(f"the empty import imported something: {res}")
            empties.append(t)
        empty_s = statistics.median(empties)
        import_s, first = run_import(env, path, email)
        if first != {"rows": size, "debtors_created": n_debtors, "invoices_created": size, "invoices_updated": 0}:
            raise RuntimeError(f"the import says {first}")
        again_s, second = run_import(env, path, email)
        if second != {"rows": size, "debtors_created": 0, "invoices_created": 0, "invoices_updated": size}:
            raise RuntimeError(f"the second import says {second}")
        with psycopg.connect(db_url) as conn:
            counts = conn.execute("SELECT (SELECT count(*) FROM invoice), (SELECT count(*) FROM debtor), "
                                  "(SELECT count(*) FROM event)").fetchone()
        if counts != (size, n_debtors, size + n_debtors + args.empty_runs + 2):  # + import.completed each
            raise RuntimeError(f"stored (invoices, debtors, events) = {counts}")

        floor_s = write_floor(db_url, creditor_id)
        minimum_s = write_minimum(db_url, creditor_id)
        work_s, again_work_s = import_s - empty_s, again_s - empty_s
        ratio, again_ratio = copy_s / work_s, copy_s / again_work_s
        res = {"rows": size, "debtors": n_debtors, "csv_mb": round(path.stat().st_size / 1e6, 2),
               "loadavg_1m": round(os.getloadavg()[0], 2),
               "copy_s": round(copy_s, 3), "copy_runs_s": [round(t, 3) for t in copies],
               "empty_s": round(empty_s, 3), "empty_runs_s": [round(t, 3) for t in empties],
               "import_s": round(import_s, 3), "work_s": round(work_s, 3), "ratio": round(ratio, 3),
               "again_s": round(again_s, 3), "again_work_s": round(again_work_s, 3), "again_ratio": round(again_ratio, 3),
               "floor_s": round(floor_s, 3), "floor_ratio": round(copy_s / floor_s, 3),
               "minimum_s": minimum_s and round(minimum_s, 3),
               "minimum_ratio": minimum_s and round(copy_s / minimum_s, 3),
               "copy_rows_per_s": round(size / copy_s), "import_rows_per_s": round(size / work_s),
               "again_rows_per_s": round(size / again_work_s), "ratio_met": ratio >= RATIO_GOAL}
        cmd = " ".join(Path(c).name for c in cli_command())
        log(f"raw COPY     : {fmt_s(copy_s)} (best of {', '.join(fmt_s(t) for t in copies)}), "
            f"{res['copy_rows_per_s']:,} rows/s")
        log(f"empty import : {fmt_s(empty_s)} (median of {', '.join(fmt_s(t) for t in empties)})")
        log(f"import       : `{cmd} import invoices` {fmt_s(import_s)} -> {first}")
        log(f"import's work: {fmt_s(work_s)}, {res['import_rows_per_s']:,} rows/s")
        log(f"ratio COPY / import's work: {ratio:.3f} -> goal >= {RATIO_GOAL} {'met' if res['ratio_met'] else 'NOT met'} "
            f"(import's work = {work_s / copy_s:.1f}x the COPY; load average {res['loadavg_1m']} on {os.cpu_count()} CPUs)")
        log(f"the writes alone (INSERT ... SELECT of the same invoices and their events, no reading or checks): "
            f"{fmt_s(floor_s)}; COPY / that = {copy_s / floor_s:.3f}; import's work = {work_s / floor_s:.2f}x it")
        if minimum_s is not None:
            log(f"the least this data model writes (the same, keys only, no foreign-key check): "
                f"{fmt_s(minimum_s)}; COPY / that = {copy_s / minimum_s:.3f}")
        log(f"same file again (unchanged rows): {fmt_s(again_s)}, work {fmt_s(again_work_s)}, "
            f"{res['again_rows_per_s']:,} rows/s, ratio {again_ratio:.3f}")
        return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="20000,200000", help="invoice rows per run, comma-separated")
    p.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL"),
                   help="a PostgreSQL database to connect to for creating and dropping the bench databases "
                        "(default: TEST_DATABASE_URL)")
    p.add_argument("--empty-runs", type=int, default=3, help="empty imports timed (median; default 3)")
    p.add_argument("--copy-repeats", type=int, default=3, help="raw COPYs timed (best; default 3)")
    p.add_argument("--db-prefix", default="relance_bench_import", help="name prefix of the throw-away databases")
    p.add_argument("--keep", action="store_true", help="keep the databases (debugging)")
    args = p.parse_args()
    if not args.database_url:
        p.error("--database-url or TEST_DATABASE_URL is required")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    secret = secrets.token_urlsafe(32)
    # The app's bytecode, as an install leaves it (see dunning_day.py): the empty import is the
    # process's start-up, which an editable install would otherwise inflate.
    compiled = all(compileall.compile_dir(str(ROOT / d), quiet=1) for d in ("portal", "dunning_jobs"))
    log(f"app bytecode compiled: {bool(compiled)}")
    figures: dict = {"benchmark": "import invoices", "sizes": sizes, "cpus": os.cpu_count(),
                     "loadavg_start": [round(x, 2) for x in os.getloadavg()], "results": []}
    log(f"import invoices against a raw COPY, sizes {', '.join(f'{s:,}' for s in sizes)}; "
        f"load average {figures['loadavg_start']} on {os.cpu_count()} CPUs")
    dbs: list[str] = []
    with recorded(args.database_url, dbs, figures), tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        for size in sizes:
            figures["results"].append(bench_size(args, size, secret, dbs, Path(tmp)))
        log("\n=== summary ===")
        log(f"{'rows':>9} {'COPY':>9} {'empty':>9} {'import':>9} {'work':>9} {'rows/s':>8} {'ratio':>7} "
            f"{'again':>9} {'again/s':>8}")
        for r in figures["results"]:
            log(f"{r['rows']:>9,} {fmt_s(r['copy_s']):>9} {fmt_s(r['empty_s']):>9} {fmt_s(r['import_s']):>9} "
                f"{fmt_s(r['work_s']):>9} {r['import_rows_per_s']:>8,} {r['ratio']:>7.3f} {fmt_s(r['again_s']):>9} "
                f"{r['again_rows_per_s']:>8,}")
        figures["ratio_met"] = all(r["ratio_met"] for r in figures["results"])
        log(f"COPY / import's work >= {RATIO_GOAL}: {'met' if figures['ratio_met'] else 'NOT met'}")
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
