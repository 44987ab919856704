"""Importing a whole bank statement end to end, as a user waits for it (issue 16).

A throw-away PostgreSQL database (created from --database-url, migrated, dropped afterwards) gets
one creditor with --invoices open invoices of --invoices / 10 debtors, loaded with COPY as in
benchmarks/matching.py. A camt.053 statement of --credits credits is written with the tests'
builders (tests/bank_files):

- 60 % quote one open invoice's RF reference (portal.domain.references.invoice_reference), half of
  them in the structured reference (Strd/CdtrRefInf/Ref), half spelt in the free text as payers do;
- 25 % name one to three invoice numbers of one debtor in the free text, for their sum;
- 15 % neither: one invoice's amount or a random one, with the debtor's name as the bank gives it.

Timed, as subprocesses (`relance import bank`, else `flask --app app import bank`): an empty
statement (the process's start-up; median of --empty-runs), the statement, then the same file
again (every line a duplicate). Prints lines/s and ms per line of the import's work (the import
less the empty one) and what the import said (matched, suggested, unmatched). With --profile, the
same import runs in-process under cProfile on a copy of the loaded database (CREATE DATABASE …
TEMPLATE) and the top 15 functions by cumulative time are printed. Never asserts on time.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bank_import.py [--invoices 200000] [--credits 20000] [--profile]
"""
from __future__ import annotations

import argparse
import compileall
import cProfile
import io
import os
import pstats
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))  # the tests' camt builders

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from bank_files import Entry, Tx, camt_entry, camt_head, camt_statement_head, camt_tail  # noqa: E402
from bench_db import drop_database, migrated_database  # noqa: E402
from dunning import copy_creditor, fmt_s, log, make_app, recorded  # noqa: E402
from dunning_day import cli_command, cli_env, run_command  # noqa: E402
from matching import BOOK_SQL, DAY, DEBTOR_SQL, NOISE, load, payer_name, spell_numbers, spell_reference  # noqa: E402

from portal.domain.references import invoice_reference  # noqa: E402

SEED = 20261206
VERSION = 8  # camt.053.001.08


def make_entries(rows, names: dict[int, str], n: int, rng: random.Random) -> list[Entry]:
    """`n` credit entries (see the module's docstring), each invoice paid at most once."""
    by_debtor: dict[int, list[tuple]] = {}
    for row in rows:
        by_debtor.setdefault(row[1], []).append(row)
    debtors = list(by_debtor)
    used: set[int] = set()
    out = []
    for k in range(n):
        row = rows[rng.randrange(len(rows))]
        while row[0] in used:
            row = rows[rng.randrange(len(rows))]
        debtor, share = row[1], k % 20  # 12/20 references, 5/20 numbers, 3/20 neither
        strd, ustrd = None, ()
        if share < 12:
            used.add(row[0])
            amount, ref = row[3], invoice_reference(row[0])
            if share % 2:
                strd = ref
            else:
                ustrd = (spell_reference(ref, rng),)
        elif share < 17:
            free = [r for r in by_debtor[debtor] if r[0] not in used]
            picked = rng.sample(free, min(len(free), rng.randint(1, 3))) or [row]
            used.update(r[0] for r in picked)
            amount, ustrd = sum(r[3] for r in picked), (spell_numbers([r[2] for r in picked], rng),)
        else:
            debtor = rng.choice(debtors)
            amount = by_debtor[debtor][0][3] if share < 19 else rng.randint(1_00, 9_000_00)
            ustrd = (rng.choice(NOISE),)
        booked = (DAY - timedelta(days=rng.randrange(30))).isoformat()
        out.append(Entry(f"{amount // 100}.{amount % 100:02d}", booked=booked, valued=booked, ref=f"BK{k:09d}",
                         txs=[Tx(ref=f"TX{k:09d}", e2e=f"E2E{k:09d}", name=payer_name(names[debtor], rng),
                                 iban=f"FR76{k:023d}", ustrd=ustrd, strd=strd)]))
    return out


def write_statement(path: Path, entries: list[Entry]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(camt_head("053", VERSION) + camt_statement_head("053"))
        for e in entries:
            f.write(camt_entry(e, VERSION))
        f.write("</Stmt>" + camt_tail("053"))


def run_import(env: dict, path: Path, email: str) -> tuple[float, dict]:
    return run_command(env, "import", "bank", str(path), "--creditor", email)


def profile_import(args, db_name: str, db_url: str, path: Path, creditor_id: int, secret: str, dbs: list) -> None:
    """The same import in-process under cProfile, on a copy of the loaded database."""
    copy = f"{db_name}_prof"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(copy), sql.Identifier(db_name)))
    dbs.append(copy)
    try:
        app = make_app(db_url.rsplit("/", 1)[0] + f"/{copy}", secret)
        from portal.extensions import db
        from portal.models import Creditor
        from portal.services import bank_statements
        with app.app_context():
            creditor = db.session.get(Creditor, creditor_id)
            profiler = cProfile.Profile()
            with open(path, "rb") as stream:
                t0 = time.perf_counter()
                profiler.enable()
                result = bank_statements.import_statement(creditor, stream, path.name, actor="cli")
                profiler.disable()
                elapsed = time.perf_counter() - t0
            db.session.remove()
            db.engine.dispose()
        log(f"\nin-process import under cProfile: {fmt_s(elapsed)} -> {result.as_dict()}")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(15)
        log(out.getvalue().rstrip())
    finally:
        drop_database(args.database_url, copy)
        dbs.remove(copy)


def bench(args, secret: str, dbs: list, workdir: Path) -> dict:
    rng = random.Random(SEED)
    with migrated_database(args.database_url, args.db_prefix, dbs, make_app, secret, args.keep) as (name, db_url, _app):
        log(f"database {name}: {args.invoices:,} open invoices, a statement of {args.credits:,} credits")
        email = "bench@example.com"
        t0 = time.perf_counter()
        with psycopg.connect(db_url) as conn:
            creditor_id = copy_creditor(conn, "Bench SARL", email)
            conn.execute("UPDATE creditor SET hold_dunning = true WHERE id = %s", (creditor_id,))
            n_debtors = load(conn, creditor_id, args.invoices, rng)
            conn.commit()
            rows = conn.execute(BOOK_SQL, (creditor_id,)).fetchall()
            names = dict(conn.execute(DEBTOR_SQL, (creditor_id,)).fetchall())
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        log(f"loaded {n_debtors:,} debtors and {args.invoices:,} invoices in {fmt_s(time.perf_counter() - t0)}")

        path, empty = workdir / "statement.xml", workdir / "empty.xml"
        t0 = time.perf_counter()
        write_statement(path, make_entries(rows, names, args.credits, rng))
        write_statement(empty, [])
        del rows, names
        log(f"camt.053: {args.credits:,} credits, {path.stat().st_size / 1e6:.1f} MB, written in "
            f"{fmt_s(time.perf_counter() - t0)}")

        if args.profile:
            profile_import(args, name, db_url, path, creditor_id, secret, dbs)

        env = cli_env(db_url, secret)
        empties = [run_import(env, empty, email)[0] for _ in range(args.empty_runs)]
        empty_s = statistics.median(empties)
        import_s, first = run_import(env, path, email)
        if first["transactions"] != args.credits or first["new"] != args.credits:
            raise RuntimeError(f"the import says {first}")
        again_s, second = run_import(env, path, email)
        if second["duplicates"] != args.credits or second["new"] != 0:
            raise RuntimeError(f"the second import says {second}")
        with psycopg.connect(db_url) as conn:
            counts = conn.execute("SELECT (SELECT count(*) FROM bank_transaction), (SELECT count(*) FROM payment), "
                                  "(SELECT count(*) FROM event)").fetchone()
        work_s, again_work_s = import_s - empty_s, again_s - empty_s
        res = {"invoices": args.invoices, "credits": args.credits, "mb": round(path.stat().st_size / 1e6, 2),
               "loadavg_1m": round(os.getloadavg()[0], 2), "empty_s": round(empty_s, 3),
               "empty_runs_s": [round(t, 3) for t in empties], "import_s": round(import_s, 3),
               "work_s": round(work_s, 3), "lines_per_s": round(args.credits / work_s),
               "ms_per_line": round(work_s / args.credits * 1000, 3), "again_s": round(again_s, 3),
               "again_work_s": round(again_work_s, 3), "again_lines_per_s": round(args.credits / again_work_s),
               "result": first, "again": second,
               "stored": dict(zip(("transactions", "payments", "events"), counts))}
        cmd = " ".join(Path(c).name for c in cli_command())
        log(f"\nempty statement : {fmt_s(empty_s)} (median of {', '.join(fmt_s(t) for t in empties)})")
        log(f"import          : `{cmd} import bank` {fmt_s(import_s)} -> matched {first['matched']:,}, suggested "
            f"{first['suggested']:,}, unmatched {first['unmatched']:,}")
        log(f"import's work   : {fmt_s(work_s)}, {res['lines_per_s']:,} lines/s, {res['ms_per_line']:.3f} ms a line")
        log(f"same file again : {fmt_s(again_s)}, work {fmt_s(again_work_s)}, {res['again_lines_per_s']:,} lines/s "
            f"(duplicates {second['duplicates']:,})")
        log(f"stored          : {res['stored']}; load average {res['loadavg_1m']} on {os.cpu_count()} CPUs")
        return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL"),
                   help="a PostgreSQL database to connect to for creating and dropping the bench database "
                        "(default: TEST_DATABASE_URL)")
    p.add_argument("--invoices", type=int, default=200_000)
    p.add_argument("--credits", type=int, default=20_000)
    p.add_argument("--empty-runs", type=int, default=3, help="empty imports timed (median; default 3)")
    p.add_argument("--profile", action="store_true", help="also profile the import in-process (cProfile, top 15)")
    p.add_argument("--db-prefix", default="relance_bench_bank", help="name prefix of the throw-away database")
    p.add_argument("--keep", action="store_true", help="keep the database (debugging)")
    args = p.parse_args()
    if not args.database_url:
        p.error("--database-url or TEST_DATABASE_URL is required")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    secret = secrets.token_urlsafe(32)
    # The app's bytecode, as an install leaves it (see dunning_day.py): the empty import is start-up.
    compiled = all(compileall.compile_dir(str(ROOT / d), quiet=1) for d in ("portal", "dunning_jobs"))
    log(f"app bytecode compiled: {bool(compiled)}")
    figures: dict = {"benchmark": "import bank", "cpus": os.cpu_count(),
                     "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    dbs: list[str] = []
    with recorded(args.database_url, dbs, figures), tempfile.TemporaryDirectory(prefix="bench_bank_") as tmp:
        figures["result"] = bench(args, secret, dbs, Path(tmp))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
