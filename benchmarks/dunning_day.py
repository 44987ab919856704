"""The day's work of `dunning run` against a raw baseline, and the start-up of an empty run
(`benchmarks/dunning.py --day-work`; this module holds that part of the dunning benchmark).

For each size (open invoices; debtors = invoices / 10), on a fresh PostgreSQL database loaded
as for the planner benchmark (steady state: every invoice carries the reminders of the steps it
passed, and its rung on the ladder, so that only invoices crossing a step today are due):

1. baseline = the raw scan of the open invoices (one SELECT, every row fetched; best of
   --raw-repeats) + a raw smtplib loop over one connection sending the very messages the run sent
   (the bytes the SMTP server received from it, same recipients) to the same aiosmtpd server
   (tests/fakes/smtp_server.py, in its own process); median of --smtp-rounds;
2. the day: `relance dunning run --date DAY` as a CLI process (wall time), SMTP_URL pointing at
   that server: plan, compose, send;
3. the empty run: the same command again for the same date (nothing new to plan or send), several
   times (--empty-runs), median; the app's bytecode is compiled first, as an install leaves it;
4. day's work = the day less the median empty run; ratio = day's work / baseline (goal <= 10x);
   empty run goal <= 0.8 s.

--profile FILE instead runs the day in-process under cProfile (no timing figures) and prints
the hotspots of planning, composing and sending.
"""
from __future__ import annotations

import compileall
import cProfile
import json
import os
import pickle
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psycopg

from bench_db import create_database, drop_database
from dunning import (ROOT, SmtpSink, analyze, copy_creditor, fmt_s, load_main, log, make_app,
                     plan_steps, raw_loop, raw_scan, recorded)

DAY_RATIO_GOAL = 10.0
EMPTY_RUN_GOAL_S = 0.8
SEED = 20261206

# Steady state under the ladder: each history reminder's rung (its step's ordinal among the plan's
# after-due steps) and each invoice's highest rung sent and the day it was sent, as the outbox
# records them when a send is recorded.
SET_RUNGS = [
    "UPDATE reminder r SET rung = x.rung FROM (SELECT mine.id, count(*) AS rung FROM dunning_step mine "
    "JOIN dunning_step s ON s.plan_id = mine.plan_id AND s.offset_days > 0 AND s.position <= mine.position "
    "WHERE mine.offset_days > 0 GROUP BY mine.id) x WHERE r.step_id = x.id",
    # (a courtesy notice is rung 0: portal/services/ladder.py, ladder_rung)
    "UPDATE invoice i SET rung_reached = x.rung, rung_sent_on = x.day FROM (SELECT DISTINCT ON (invoice_id) "
    "invoice_id, coalesce(rung, 0) AS rung, dunning_date AS day FROM reminder WHERE status = 'sent' "
    "AND step_code <> 'thank_you' ORDER BY invoice_id, coalesce(rung, 0) DESC, dunning_date DESC) x "
    "WHERE i.id = x.invoice_id",
]


def cli_command() -> list[str]:
    """`relance` (the console script, app:main) when installed beside this Python, else `flask`."""
    relance = Path(sys.executable).parent / "relance"
    return [str(relance)] if relance.exists() else [sys.executable, "-m", "flask", "--app", "app"]


def cli_env(db_url: str, secret: str, **extra) -> dict:
    """The environment of a CLI process on that database: this checkout's code, jobs in-process."""
    env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": secret, "PORTAL_BASE_URL": "http://127.0.0.1:5000",
           "RATELIMIT_STORAGE_URI": "memory://",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep), **extra}
    env.pop("CELERY_BROKER_URL", None)
    return env


def run_command(env: dict, *args: str) -> tuple[float, dict]:
    """A CLI command as a process: its wall time and the JSON of its last line of output."""
    t0 = time.perf_counter()
    proc = subprocess.run([*cli_command(), *args], env=env, cwd=str(ROOT), capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-4000:]}")
    return elapsed, json.loads(proc.stdout.strip().splitlines()[-1])


def run_cli(env: dict, day: date) -> tuple[float, dict]:
    return run_command(env, "dunning", "run", "--date", day.isoformat())


def received(sink: SmtpSink) -> list[tuple[str, str, bytes]]:
    """What the SMTP server accepted since the last clear: (sender, recipient, bytes); cleared."""
    with tempfile.NamedTemporaryFile(prefix="bench_smtp_", suffix=".pickle", delete=False) as f:
        path = f.name
    try:
        got = sink._cmd(f"dump {path}")  # noqa: SLF001
        if got != "ok":
            raise RuntimeError(f"SMTP server dump: {got!r}")
        with open(path, "rb") as f:
            return pickle.load(f)
    finally:
        os.unlink(path)


def profile_day(db_url: str, secret: str, sink: SmtpSink, day: date, out: str) -> dict:
    from dunning_jobs import day as dunning_day
    from portal.extensions import db

    app = make_app(db_url, secret, SMTP_URL=sink.url)
    with app.app_context():
        prof = cProfile.Profile()
        t0, c0 = time.perf_counter(), time.process_time()
        result = prof.runcall(dunning_day.run, day)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        db.session.remove()
        db.engine.dispose()
    prof.dump_stats(out)
    res = result.as_dict()
    log(f"profiled day (in-process, under cProfile: slower than the real run): {fmt_s(elapsed)} ({fmt_s(cpu)} CPU in "
        f"this process, load {os.getloadavg()[0]:.1f}), {res}; stats in {out}")
    stats = pstats.Stats(out)
    stats.sort_stats("cumulative").print_stats(r"wt|dunning_jobs|portal|flask_babel|babel|jinja2|email|itsdangerous", 45)
    stats.sort_stats("tottime").print_stats(25)
    return {"profile": out, "profile_s": round(elapsed, 2), "profile_cpu_s": round(cpu, 2), **res}


def bench_day_size(args, size: int, secret: str, day: date, dbs: list) -> dict:
    import random

    from flask_migrate import upgrade

    from portal.extensions import db

    rng = random.Random(SEED + size)
    name, db_url = create_database(args.pg_url, args.db_prefix)
    dbs.append(name)
    log(f"\n=== day's work, {size:,} open invoices — database {name} ===")
    app = make_app(db_url, secret)
    sink = None
    try:
        with app.app_context():
            upgrade()
            db.session.remove()
            db.engine.dispose()
        with psycopg.connect(db_url) as conn:
            creditor_id = copy_creditor(conn, "Bench SARL", "bench@example.com")
            conn.commit()
        steps = plan_steps(app, creditor_id)
        t0 = time.perf_counter()
        with psycopg.connect(db_url) as conn:
            loaded = load_main(conn, creditor_id, size, day, steps, True, rng)
            for stmt in SET_RUNGS:
                conn.execute(stmt)
            conn.commit()
        analyze(db_url)
        log(f"loaded {loaded['debtors']:,} debtors, {size:,} invoices, {loaded['history_reminders']:,} past "
            f"reminders (rungs set) in {time.perf_counter() - t0:.1f}s")

        raw_rows, raw_all = raw_scan(db_url, creditor_id, args.raw_repeats)
        scan_s = min(raw_all)
        sink = SmtpSink()
        if args.profile:
            return {"invoices": size, **profile_day(db_url, secret, sink, day, args.profile)}

        env = cli_env(db_url, secret, SMTP_URL=sink.url)
        day_s, day_res = run_cli(env, day)
        messages = received(sink)
        if day_res["sent"] != len(messages):
            raise RuntimeError(f"the run says it sent {day_res['sent']}, the server received {len(messages)}")
        empties = []
        for _ in range(args.empty_runs):
            t, res = run_cli(env, day)
            if res["planned"] or res["sent"]:
                raise RuntimeError(f"the run again for {day} was not empty: {res}")
            empties.append(t)
        empty_s = statistics.median(empties)

        payloads = [(to, raw) for _sender, to, raw in messages]
        sender = messages[0][0] if messages else "no-reply@localhost"
        smtp_runs = []
        for _ in range(args.smtp_rounds if payloads else 0):
            smtp_runs.append(raw_loop(sink.port, sender, payloads))
            got = received(sink)
            if len(got) != len(payloads):
                raise RuntimeError(f"raw loop: server received {len(got)} of {len(payloads)}")
        smtp_s = statistics.median(smtp_runs) if smtp_runs else 0.0

        work_s = day_s - empty_s
        baseline_s = scan_s + smtp_s
        ratio = work_s / baseline_s if baseline_s else float("inf")
        n = len(payloads)
        res = {"invoices": size, "debtors": loaded["debtors"], "rows_scanned": raw_rows,
               "loadavg_1m": round(os.getloadavg()[0], 2), "run": day_res, "messages": n,
               "avg_message_bytes": round(sum(len(b) for _, b in payloads) / n) if n else 0,
               "day_s": round(day_s, 3), "empty_runs_s": [round(t, 3) for t in empties], "empty_s": round(empty_s, 3),
               "work_s": round(work_s, 3), "scan_s": round(scan_s, 4), "smtp_s": round(smtp_s, 3),
               "smtp_runs_s": [round(t, 3) for t in smtp_runs], "baseline_s": round(baseline_s, 3),
               "ratio": round(ratio, 2), "work_ms_per_message": round(work_s / n * 1000, 2) if n else None,
               "ratio_met": ratio <= DAY_RATIO_GOAL, "empty_met": empty_s <= EMPTY_RUN_GOAL_S}
        log(f"the day   : `{' '.join(Path(c).name for c in cli_command())} dunning run --date {day}` {fmt_s(day_s)} "
            f"-> {day_res}; {n:,} e-mails of {res['avg_message_bytes']:,} bytes on average")
        log(f"empty run : {fmt_s(empty_s)} (median of {', '.join(fmt_s(t) for t in empties)}) -> goal <= "
            f"{EMPTY_RUN_GOAL_S} s {'met' if res['empty_met'] else 'NOT met'}")
        log(f"day's work: {fmt_s(work_s)} (the day less the empty run), {res['work_ms_per_message']} ms per e-mail")
        log(f"baseline  : {fmt_s(baseline_s)} = raw scan {fmt_s(scan_s)} ({raw_rows:,} rows) + raw smtplib loop "
            f"{fmt_s(smtp_s)} ({n:,} messages, median of {', '.join(fmt_s(t) for t in smtp_runs)})")
        log(f"ratio day's work / baseline: {ratio:.2f}x -> goal <= {DAY_RATIO_GOAL:g}x "
            f"{'met' if res['ratio_met'] else 'NOT met'} (load average {res['loadavg_1m']} on {os.cpu_count()} CPUs)")
        return res
    finally:
        if sink is not None:
            sink.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if not args.keep:
            drop_database(args.pg_url, name)
            log(f"dropped database {name}")
        else:
            log(f"kept database {name} ({db_url})")
        dbs.remove(name)


def main(args, sizes: list[int], secret: str, day: date) -> int:
    figures: dict = {"benchmark": "day's work", "day": day.isoformat(), "sizes": sizes, "cpus": os.cpu_count(),
                     "loadavg_start": [round(x, 2) for x in os.getloadavg()], "results": []}
    dbs: list[str] = []
    # The app's bytecode, as an install leaves it (pip compiles what it installs; an editable
    # install does not, and with PYTHONDONTWRITEBYTECODE set, as on these machines, every CLI
    # process compiles the app's ~110 modules again: +0.1 s on the empty run).
    compiled = all(compileall.compile_dir(str(ROOT / d), quiet=1) for d in ("portal", "dunning_jobs"))
    compiled = compileall.compile_file(str(ROOT / "app.py"), quiet=1) and compiled
    log(f"app bytecode compiled: {bool(compiled)}")
    log(f"dunning day's work, day {day}, sizes {', '.join(f'{s:,}' for s in sizes)}; "
        f"load average {figures['loadavg_start']} on {os.cpu_count()} CPUs")
    with recorded(args.pg_url, dbs, figures):
        for size in sizes:
            figures["results"].append(bench_day_size(args, size, secret, day, dbs))
        if not args.profile:
            log("\n=== summary ===")
            log(f"{'invoices':>10} {'e-mails':>8} {'day':>9} {'empty':>8} {'work':>9} {'scan':>9} {'smtp':>9} "
                f"{'ratio':>7} {'ms/e-mail':>10}")
            for r in figures["results"]:
                log(f"{r['invoices']:>10,} {r['messages']:>8,} {fmt_s(r['day_s']):>9} {fmt_s(r['empty_s']):>8} "
                    f"{fmt_s(r['work_s']):>9} {fmt_s(r['scan_s']):>9} {fmt_s(r['smtp_s']):>9} {r['ratio']:>6.2f}x "
                    f"{r['work_ms_per_message']!s:>10}")
            figures["ratio_met"] = all(r["ratio_met"] for r in figures["results"])
            figures["empty_met"] = all(r["empty_met"] for r in figures["results"])
            log(f"day's work <= {DAY_RATIO_GOAL:g}x baseline: {'met' if figures['ratio_met'] else 'NOT met'}; "
                f"empty run <= {EMPTY_RUN_GOAL_S} s: {'met' if figures['empty_met'] else 'NOT met'}")
    return 0 if figures["ok"] else 1
