"""Benchmark of Stripe webhook intake (POST /webhooks/stripe) under gunicorn on PostgreSQL.

1. Creates a throw-away PostgreSQL database and starts FakeStripe (tests/fakes) in this process
   with delivery switched off. Seeds one creditor, debtors with open invoices, and one card
   payment per invoice through `payments.start_card_payment` (a real Checkout Session in the
   fake); then pays every session in the fake, so its `checkout.session.completed` events pile
   up undelivered.
2. Serves a baseline (a Flask app whose POST only returns 200, `benchmarks.webhooks:baseline`)
   and then the real app, with the same gunicorn settings, and posts the same event bodies with
   the same keep-alive load generator; each body is signed with the current timestamp when sent.
   The app is measured twice: new events (verify, claim the event, re-fetch the session from
   Stripe, record the payment: one transaction each) and the same events re-delivered (must short-circuit).
3. Checks that every event was applied exactly once (webhook_event, payment, payment_attempt,
   invoice rows), prints it, and drops the database whatever happens.

No assertion on time: the goal (>= 200 events/s) is printed, never enforced. The last line of
output is one JSON object with every figure.

    .venv/bin/python benchmarks/webhooks.py [--events 2000] [--clients 8] [--workers 2] [--threads 1]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

from flask import Flask, request

ROOT = Path(__file__).resolve().parent.parent
GOAL_EVENTS_PER_S = 200
PATH = "/webhooks/stripe"

# The baseline gunicorn imports this module as `benchmarks.webhooks:baseline`: keep the module's
# top level free of anything heavier than this app.
baseline = Flask("webhook_baseline")


@baseline.route("/", methods=["GET"])
def _ready():
    return "ok"


@baseline.route(PATH, methods=["POST"])
def _accept():
    body = request.get_data(cache=False)  # read the body, as the real endpoint does
    return {"received": 1 if body else 0}


def log(msg: str = "") -> None:
    print(msg, flush=True)


# --- seeding -------------------------------------------------------------------------------

def seed(app, fake, events: int, per_debtor: int) -> list[dict]:
    """One card payment per invoice, paid in the fake; returns the undelivered completed events."""
    from portal.extensions import db
    from portal.models import Debtor, Invoice
    from portal.services import ledger, payments, tenants

    today = date.today()
    with app.app_context():
        creditor, _key = tenants.create_creditor(name="Bench SARL", email="bench@example.com",
                                                 password="bench-password", iban="FR7630006000011234567890189")
        for i in range(events):
            ref = f"D{i // per_debtor:05d}"
            if i % per_debtor == 0:
                ledger.upsert_debtor(creditor, ref, {"name": f"Debtor {ref}", "email": f"{ref.lower()}@example.com",
                                                     "language": "fr"})
            cents = 10_000 + i * 7
            ledger.upsert_invoice(creditor, f"F-{i:06d}", {
                "debtor_ref": ref, "issue_date": (today - timedelta(days=40)).isoformat(),
                "due_date": (today - timedelta(days=10)).isoformat(),
                "amount": f"{cents // 100}.{cents % 100:02d}", "currency": "EUR"})
        rows = db.session.execute(db.select(Invoice.debtor_id, Invoice.number).order_by(Invoice.id)).all()
        sessions = []
        for debtor_id, number in rows:
            attempt, _url = payments.start_card_payment(debtor_id, [number])
            sessions.append(attempt.provider_ref)
        assert db.session.query(Debtor).count() == -(-events // per_debtor)
        db.session.remove()
        db.engine.dispose()  # the gunicorn workers open their own connections
    for sid in sessions:
        fake.pay(sid)  # auto_deliver is off: the events land in fake.pending
    completed = [e for e in fake.pending if e["type"] == "checkout.session.completed"]
    assert len(completed) == events, f"{len(completed)} completed events for {events} sessions"
    return completed


# --- load generator ------------------------------------------------------------------------

def post_all(port: int, bodies: list[bytes], sign, clients: int, expect: str | None) -> dict:
    """`clients` threads, each on its own connection (http.client reopens it when gunicorn's sync
    worker closes it), taking the next body from a shared list until none is left. Each body
    is signed just before it is sent, as Stripe does per delivery attempt. `expect` is the count
    the app must report for each event ("applied" or "duplicate"); None for the baseline."""
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))
    lat: list[float] = []
    tally = {"ok": 0, "errors": 0, "first_error": None}

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            body = bodies[i]
            t0 = time.perf_counter()
            try:
                conn.request("POST", PATH, body=body, headers={
                    "Content-Type": "application/json", "Stripe-Signature": sign(body),
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"})
                resp = conn.getresponse()
                data = resp.read()
                good = resp.status == 200 and (expect is None or json.loads(data).get(expect) == 1)
                error = None if good else f"HTTP {resp.status}: {data[:200]!r}"
            except (OSError, http.client.HTTPException, ValueError) as e:
                good, error = False, repr(e)
                conn.close()
            mine.append(time.perf_counter() - t0)
            with lock:
                tally["ok" if good else "errors"] += 1
                if error and not tally["first_error"]:
                    tally["first_error"] = error
        conn.close()
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    lat.sort()
    pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2) if lat else float("nan")
    return {"events": len(bodies), **tally, "seconds": round(elapsed, 3),
            "events_per_s": round(tally["ok"] / elapsed, 1), "p50_ms": pct(0.50), "p95_ms": pct(0.95)}


def api_round_trip(app, event: dict, delay_ms: float, fake) -> float:
    """Median time of the gateway's re-fetch of one session (what each new event waits for);
    installs the optional added delay on the fake first."""
    from portal import gateways

    if delay_ms:
        dispatch = fake._dispatch  # the handler looks it up on the instance: wrap it there

        def slow(*a):
            time.sleep(delay_ms / 1000)
            return dispatch(*a)
        fake._dispatch = slow
    with app.app_context():
        gw = gateways.card()
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            gw.payment_state(event["data"]["object"]["id"])
            times.append(time.perf_counter() - t0)
    return round(sorted(times)[3] * 1000, 2)


def check_applied(db_url: str, events: int, warm: int) -> dict:
    """Each completed event stored once and applied: one payment, one succeeded attempt, one paid invoice."""
    import psycopg

    with psycopg.connect(db_url) as conn:
        q = lambda sql: conn.execute(sql).fetchone()[0]
        got = {
            "webhook_events": q("SELECT count(*) FROM webhook_event WHERE provider = 'stripe'"),
            "distinct_event_ids": q("SELECT count(DISTINCT event_id) FROM webhook_event WHERE provider = 'stripe'"),
            "applied": q("SELECT count(*) FROM webhook_event WHERE outcome = 'applied'"),
            "payments": q("SELECT count(*) FROM payment WHERE provider = 'stripe'"),
            "distinct_payment_refs": q("SELECT count(DISTINCT reference) FROM payment WHERE provider = 'stripe'"),
            "attempts_succeeded": q("SELECT count(*) FROM payment_attempt WHERE status = 'succeeded' "
                                    "AND payment_id IS NOT NULL"),
            "invoices_paid": q("SELECT count(*) FROM invoice WHERE status = 'paid'"),
        }
    want = {"webhook_events": events + warm, "distinct_event_ids": events + warm, "applied": events,
            "payments": events, "distinct_payment_refs": events, "attempts_succeeded": events,
            "invoices_paid": events}
    return {"counts": got, "expected": want, "ok": got == want}


# --- main ----------------------------------------------------------------------------------

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=2000, help="distinct paid checkouts = events (default 2000)")
    p.add_argument("--per-debtor", type=int, default=10, help="invoices per debtor (default 10)")
    p.add_argument("--clients", type=int, default=8, help="concurrent client threads (default 8)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads per worker (default 1: sync workers; more: gthread workers)")
    p.add_argument("--warmup", type=int, default=100,
                   help="unmeasured events first per server (payment_intent.succeeded, stored and ignored)")
    p.add_argument("--api-delay-ms", type=float, default=0,
                   help="added to each fake Stripe API answer during the measured runs (a real API's round trip)")
    p.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="maintenance database URL used to create and drop the bench database")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from bench_db import create_database, drop_database
    from fakes.stripe_server import FakeStripe
    from flask_migrate import upgrade
    from portal_page import Gunicorn

    from portal import create_app

    kind = "sync workers" if args.threads == 1 else f"gthread workers x {args.threads} threads"
    figures: dict = {"events": args.events, "clients": args.clients, "workers": args.workers, "threads": args.threads,
                     "cpus": os.cpu_count(),
                     "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    failures: list[str] = []
    servers: list = []
    db_name = fake = None
    try:
        fake = FakeStripe(auto_deliver=False).start()
        db_name, db_url = create_database(args.pg_url)
        log(f"database: {db_name}; fake Stripe at {fake.url} (a thread of this process)")
        stripe_env = {"STRIPE_SECRET_KEY": fake.api_key, "STRIPE_WEBHOOK_SECRET": fake.webhook_secret,
                      "STRIPE_API_BASE": fake.url}
        secret = secrets.token_urlsafe(32)
        app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": secret, "RATELIMIT_ENABLED": False,
                          "RATELIMIT_STORAGE_URI": "memory://", **stripe_env})
        with app.app_context():
            upgrade()
        t0 = time.perf_counter()
        completed = seed(app, fake, args.events, args.per_debtor)
        ignored = [e for e in fake.pending if e["type"] == "payment_intent.succeeded"][:args.warmup]
        log(f"seeded {args.events:,} invoices ({args.per_debtor} per debtor), one Checkout Session each, all paid "
            f"in the fake with delivery off ({time.perf_counter() - t0:.1f}s)")
        # Shuffled: a burst from Stripe is not grouped by debtor (fixed seed: the same order every run).
        random.Random(42).shuffle(completed)
        bodies = [json.dumps(e).encode() for e in completed]
        warm_bodies = [json.dumps(e).encode() for e in ignored]
        log(f"bodies: {sum(map(len, bodies)) // len(bodies):,} bytes on average; {args.clients} client threads, "
            f"gunicorn {args.workers} {kind}; {len(warm_bodies)} warm-up events per server, not measured")
        figures["api_round_trip_ms"] = api_round_trip(app, completed[0], args.api_delay_ms, fake)
        log(f"fake Stripe round trip as the app re-fetches a session: {figures['api_round_trip_ms']} ms "
            f"(added delay {args.api_delay_ms:g} ms)")
        # The rate limiter stays on (in-memory per worker), as in production.
        env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": secret, "RATELIMIT_STORAGE_URI": "memory://",
               **stripe_env}

        def run(module: str, ready: str, plans: list[tuple[str, str | None]]) -> None:
            server = Gunicorn(module, args.workers, env, ready, threads=args.threads)
            servers.append(server)
            try:
                post_all(server.port, warm_bodies, fake.sign, args.clients, None)
                for name, expect in plans:
                    r = figures[name] = post_all(server.port, bodies, fake.sign, args.clients, expect)
                    log(f"{name:<10}: {r['events_per_s']:8.1f} events/s  p50 {r['p50_ms']:7.2f} ms  "
                        f"p95 {r['p95_ms']:7.2f} ms  ({r['ok']} ok, {r['errors']} errors, {r['seconds']}s)")
                    if r["errors"]:
                        failures.append(f"{name}: {r['errors']} errors")
                        log(f"  first error: {r['first_error']}")
            finally:
                server.stop()
                servers.remove(server)

        run("benchmarks.webhooks:baseline", "/", [("baseline", None)])
        run("benchmarks.wsgi_app:app", "/healthz", [("new", "applied"), ("duplicate", "duplicate")])

        check = figures["exactly_once"] = check_applied(db_url, args.events, len(warm_bodies))
        log(f"exactly once: {'OK' if check['ok'] else 'FAIL'} {check['counts']}"
            + ("" if check["ok"] else f" expected {check['expected']}"))
        if not check["ok"]:
            failures.append("exactly-once check")

        base, new, dup = figures["baseline"]["events_per_s"], figures["new"]["events_per_s"], figures["duplicate"]["events_per_s"]
        figures["ratio_new"] = round(new / base, 3) if base else None
        figures["ratio_duplicate"] = round(dup / base, 3) if base else None
        figures["goal_met"] = new >= GOAL_EVENTS_PER_S
        log(f"ratio app/baseline: new events {figures['ratio_new']}, duplicates {figures['ratio_duplicate']}")
        log(f"goal >= {GOAL_EVENTS_PER_S} new events/s: {'met' if figures['goal_met'] else 'NOT met'} ({new})")
        log(f"note: the fake Stripe API (re-fetched once per new event), the {args.clients} client threads, PostgreSQL and "
            f"gunicorn share this machine's {os.cpu_count()} cores (load average at start "
            f"{figures['loadavg_start'][0]})")
        log(f"README: Stripe webhooks, {args.events:,} events, gunicorn {args.workers} {kind}, {args.clients} "
            f"clients: new {new:.0f}/s (p50 {figures['new']['p50_ms']:.0f} ms, p95 {figures['new']['p95_ms']:.0f} ms), "
            f"duplicates {dup:.0f}/s, baseline {base:.0f}/s; ratio {figures['ratio_new']} (duplicates "
            f"{figures['ratio_duplicate']}); goal {GOAL_EVENTS_PER_S}/s {'met' if figures['goal_met'] else 'NOT met'}; "
            f"exactly once {'OK' if check['ok'] else 'FAIL'}")
    except BaseException as e:
        failures.append(f"{type(e).__name__}: {e}")
        raise
    finally:
        for server in servers:
            server.stop()
        if fake is not None:
            fake.stop()
        if db_name:
            drop_database(args.pg_url, db_name)
            log(f"dropped database {db_name}")
        figures["failures"] = failures
        figures["ok"] = not failures
        print(json.dumps(figures), flush=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
