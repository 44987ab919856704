"""Load test: concurrent debtors browsing their portal and paying by card, with locust, against
gunicorn on PostgreSQL.

1. Creates a throw-away PostgreSQL database, migrates it, seeds one creditor with `--debtors`
   debtors (default: as many as users), each with `--invoices` open invoices and a portal link.
2. Starts FakeStripe (tests/fakes) in this process, its webhooks pointed at the app, and serves
   the real app with gunicorn (`--workers` x `--threads`, gthread when threads > 1).
3. Runs locust in-process (`locust.env.Environment`, a local runner): `--users` users spawned at
   `--spawn-rate`/s for `--seconds`. Each user is one debtor: opens its link (GET /l/<token>,
   the session cookie is kept), then browses home, statement of account and an invoice PDF, and
   pays one open invoice at a time (POST /portal/pay -> the fake's hosted checkout form, which
   records the payment and delivers the signed webhook to the app -> back to the status page).
4. Prints errors, p50/p95/p99, requests/s per request kind and in total, and checks in the
   database that every paid checkout was applied exactly once; drops the database whatever
   happens. No goal is enforced on time; the exit status is 1 on any error or exactly-once miss.

The last line of output is one JSON object with every figure.

    .venv/bin/python benchmarks/load.py [--users 100] [--seconds 60] [--workers 2] [--threads 4]
"""
from __future__ import annotations

from gevent import monkey  # locust needs it first: patch before anything opens a socket

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from datetime import date, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402
from locust import HttpUser, between, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests")]

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def log(msg: str = "") -> None:
    print(msg, flush=True)


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- seeding -------------------------------------------------------------------------------

def seed(app, debtors: int, invoices: int) -> list[dict]:
    """One creditor; per debtor its open invoices and a portal link path."""
    from portal.extensions import db
    from portal.services import ledger, links, tenants

    today = date.today()
    out = []
    with app.app_context():
        creditor, _key = tenants.create_creditor(name="Load SARL", email="load@example.com",
                                                 password="load-password", iban="FR7630006000011234567890189")
        for d in range(debtors):
            ref = f"L{d:05d}"
            debtor, _ = ledger.upsert_debtor(creditor, ref, {"name": f"Debtor {ref}", "email": f"{ref.lower()}@example.com",
                                                             "language": "fr" if d % 2 else "en"})
            numbers = []
            for i in range(invoices):
                number = f"{ref}-{i:02d}"
                issue = today - timedelta(days=20 + 9 * i)
                cents = 5_000 + 131 * d + 17 * i
                ledger.upsert_invoice(creditor, number, {
                    "debtor_ref": ref, "issue_date": issue.isoformat(), "due_date": (issue + timedelta(days=30)).isoformat(),
                    "amount": f"{cents // 100}.{cents % 100:02d}", "currency": "EUR"})
                numbers.append(number)
            link = links.issue(debtor, issued_by="cli")
            out.append({"ref": ref, "link": _path(link.url), "numbers": numbers})
        db.session.remove()
        db.engine.dispose()  # gunicorn's workers open their own connections
    return out


# --- the user ------------------------------------------------------------------------------

class Debtor(HttpUser):
    """One debtor per user, taken from `Debtor.accounts` (a queue filled before the run)."""
    wait_time = between(0.5, 2.0)
    accounts: queue.Queue = queue.Queue()
    checkout_base = ""  # the fake Stripe's URL
    paid: list[tuple[str, str]] = []  # (invoice number, session id) of each completed checkout

    def on_start(self):
        try:
            self.account = self.accounts.get_nowait()
        except queue.Empty:  # more users than debtors: this one stays idle
            self.account = None
            self.stop()
            return
        self.open_items = list(self.account["numbers"])
        self.open_link()

    def open_link(self):
        with self.client.get(self.account["link"], name="/l/[token]", allow_redirects=False,
                             catch_response=True) as r:
            if r.status_code != 303 or not r.headers.get("Location", "").endswith("/portal/"):
                r.failure(f"opening the link gave {r.status_code}")
            else:
                r.success()

    def home(self) -> str | None:
        with self.client.get("/portal/", name="/portal/", catch_response=True) as r:
            if r.status_code != 200 or self.account["ref"] not in r.text and "Debtor" not in r.text:
                r.failure(f"home gave {r.status_code} {r.error or ''}")
                return None
            r.success()
            return r.text

    @task(5)
    def browse_home(self):
        self.home()

    @task(2)
    def statement(self):
        with self.client.get("/portal/statement", name="/portal/statement", catch_response=True) as r:
            if r.status_code != 200 or "L" not in r.text:
                r.failure(f"statement gave {r.status_code} {r.error or ''}")

    @task(1)
    def invoice_pdf(self):
        number = self.account["numbers"][0]
        with self.client.get(f"/portal/invoices/{number}.pdf", name="/portal/invoices/[number].pdf",
                             catch_response=True) as r:
            if r.status_code != 200 or not r.content.startswith(b"%PDF"):
                r.failure(f"invoice PDF gave {r.status_code} {r.error or ''}")

    @task(2)
    def pay_one(self):
        if not self.open_items:
            self.home()
            return
        page = self.home()
        token = CSRF.search(page or "")
        if token is None:
            return
        number = self.open_items.pop(0)
        with self.client.post("/portal/pay", name="/portal/pay", allow_redirects=False, catch_response=True,
                              data={"csrf_token": token.group(1), "method": "card", "only": number}) as r:
            location = r.headers.get("Location", "")
            if r.status_code != 303 or "/c/pay/" not in location:
                r.failure(f"pay gave {r.status_code} -> {location!r}")
                return
            r.success()
        sid = location.rsplit("/", 1)[1]
        # The hosted checkout form (fake Stripe): paying there delivers the webhook to the app.
        with self.client.post(f"{self.checkout_base}/c/pay/{sid}", name="stripe: checkout form (fake)",
                              data={"card": "4242424242424242"}, allow_redirects=False, catch_response=True) as r:
            back = r.headers.get("Location", "")
            if r.status_code != 303 or "/portal/payments/" not in back:
                r.failure(f"checkout gave {r.status_code}")
                return
            r.success()
        self.paid.append((number, sid))
        with self.client.get(_path(back), name="/portal/payments/[id]", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"status page gave {r.status_code}")


# --- checks --------------------------------------------------------------------------------

def check_exactly_once(db_url: str, paid: list[tuple[str, str]], fake) -> dict:
    """Every completed checkout recorded once as a payment, each paid invoice allocated once at
    its full amount, nothing else paid, every webhook stored once and answered 200."""
    import psycopg

    url = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        payments = conn.execute("SELECT count(*), count(DISTINCT reference) FROM payment "
                                "WHERE provider = 'stripe'").fetchone()
        alloc = dict(conn.execute(
            "SELECT i.number, count(*) FROM payment_allocation a JOIN invoice i ON i.id = a.invoice_id "
            "GROUP BY i.number").fetchall())
        wrong = conn.execute(
            "SELECT count(*) FROM invoice i WHERE i.status = 'paid' AND i.amount_paid <> i.amount").fetchone()[0]
        paid_rows = {r[0] for r in conn.execute("SELECT number FROM invoice WHERE status = 'paid'")}
        webhook_events = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM webhook_event").fetchone()
    numbers = Counter(n for n, _ in paid)
    statuses = Counter(d.status for d in fake.deliveries)
    counts = {"checkouts_paid": len(paid), "payments": payments[0], "distinct_payment_refs": payments[1],
              "paid_invoices": len(paid_rows), "invoices_allocated_twice": sum(1 for c in alloc.values() if c > 1),
              "paid_not_in_full": wrong, "webhook_events": webhook_events[0],
              "webhooks_sent": len(fake.deliveries), "webhook_answers": {str(k): v for k, v in statuses.items()}}
    ok = (payments[0] == payments[1] == len(paid) and set(numbers) == paid_rows == set(alloc)
          and max(numbers.values(), default=1) == 1 and counts["invoices_allocated_twice"] == 0 and wrong == 0
          and webhook_events[0] == webhook_events[1] == len(fake.events) and set(statuses) <= {200})
    return {"ok": ok, "counts": counts}


def summarise(env) -> dict:
    stats = env.stats
    rows = {}
    for (name, method), s in sorted(stats.entries.items()):
        rows[f"{method} {name}"] = {"requests": s.num_requests, "failures": s.num_failures,
                                    "p50_ms": s.get_response_time_percentile(0.5),
                                    "p95_ms": s.get_response_time_percentile(0.95),
                                    "p99_ms": s.get_response_time_percentile(0.99),
                                    "rps": round(s.total_rps, 1)}
    t = stats.total
    total = {"requests": t.num_requests, "failures": t.num_failures, "p50_ms": t.get_response_time_percentile(0.5),
             "p95_ms": t.get_response_time_percentile(0.95), "p99_ms": t.get_response_time_percentile(0.99),
             "rps": round(t.total_rps, 1)}
    errors = [{"name": e.name, "method": e.method, "error": str(e.error)[:300], "occurrences": e.occurrences}
              for e in stats.errors.values()]
    return {"requests": rows, "total": total, "errors": errors}


# --- main ----------------------------------------------------------------------------------

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=100, help="concurrent debtors (default 100)")
    p.add_argument("--seconds", type=float, default=60.0, help="duration once spawning starts (default 60)")
    p.add_argument("--spawn-rate", type=float, default=20.0, help="users started per second (default 20)")
    p.add_argument("--debtors", type=int, default=None, help="debtors seeded (default: one per user)")
    p.add_argument("--invoices", type=int, default=6, help="open invoices per debtor (default 6)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--threads", type=int, default=4, help="threads per worker (default 4: gthread)")
    p.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="maintenance database URL used to create and drop the load database")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from bench_db import create_database, drop_database
    from fakes.stripe_server import FakeStripe
    from flask_migrate import upgrade
    from portal_page import Gunicorn

    from portal import create_app

    figures: dict = {"users": args.users, "seconds": args.seconds, "workers": args.workers, "threads": args.threads,
                     "cpus": os.cpu_count(), "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    failures: list[str] = []
    server = fake = db_name = None
    try:
        fake = FakeStripe().start()
        db_name, db_url = create_database(args.pg_url)
        db_url = db_url.replace("postgresql://", "postgresql+psycopg://", 1)
        log(f"database: {db_name}; fake Stripe at {fake.url} (in this process)")
        stripe_env = {"STRIPE_SECRET_KEY": fake.api_key, "STRIPE_WEBHOOK_SECRET": fake.webhook_secret,
                      "STRIPE_API_BASE": fake.url}
        secret = secrets.token_urlsafe(32)
        base_url = "http://portal.load.test"  # links and return URLs: users follow their paths
        app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": secret, "RATELIMIT_ENABLED": False,
                          "RATELIMIT_STORAGE_URI": "memory://", "PORTAL_BASE_URL": base_url, **stripe_env})
        with app.app_context():
            upgrade()
        t0 = time.perf_counter()
        accounts = seed(app, args.debtors or args.users, args.invoices)
        log(f"seeded {len(accounts)} debtors x {args.invoices} open invoices ({time.perf_counter() - t0:.1f}s)")

        # Keep-alive longer than a user's think time (2 s at most): with gunicorn's default of 2 s a
        # client can reuse a connection in the instant the server closes it ("Remote end closed
        # connection without response"), a race of the load generator, not an answer of the app.
        env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": secret, "PORTAL_BASE_URL": base_url, **stripe_env,
               "GUNICORN_CMD_ARGS": f"{os.environ.get('GUNICORN_CMD_ARGS', '')} --keep-alive 10".strip()}
        server = Gunicorn("benchmarks.wsgi_app:app", args.workers, env, "/healthz", threads=args.threads)
        fake.webhook_url = f"http://127.0.0.1:{server.port}/webhooks/stripe"
        kind = "sync" if args.threads == 1 else f"gthread x {args.threads} threads"
        log(f"gunicorn {args.workers} workers ({kind}) on :{server.port}; {args.users} users at "
            f"{args.spawn_rate:g}/s for {args.seconds:g}s")

        for a in accounts:
            Debtor.accounts.put(a)
        Debtor.checkout_base = fake.url
        Debtor.paid = []
        # stop_timeout: at the end each user finishes the task it is in (a request cut short by
        # the stop is not an error of the app).
        lenv = Environment(user_classes=[Debtor], host=f"http://127.0.0.1:{server.port}", events=events,
                           stop_timeout=30)
        runner = lenv.create_local_runner()
        runner.start(args.users, spawn_rate=args.spawn_rate)
        gevent.sleep(args.seconds)
        runner.stop()  # waits for the users' current tasks (stop_timeout)
        runner.quit()
        runner.greenlet.join()
        figures.update(summarise(lenv))
        total = figures["total"]
        for name, r in figures["requests"].items():
            log(f"{name:<42} {r['requests']:6d} req  {r['failures']:3d} err  p50 {r['p50_ms']:6.0f} ms  "
                f"p95 {r['p95_ms']:6.0f} ms  p99 {r['p99_ms']:6.0f} ms  {r['rps']:6.1f}/s")
        log(f"{'total':<42} {total['requests']:6d} req  {total['failures']:3d} err  p50 {total['p50_ms']:6.0f} ms  "
            f"p95 {total['p95_ms']:6.0f} ms  p99 {total['p99_ms']:6.0f} ms  {total['rps']:6.1f}/s")
        for e in figures["errors"]:
            log(f"error x{e['occurrences']}: {e['method']} {e['name']}: {e['error']}")
        if total["failures"] or not total["requests"]:
            failures.append(f"{total['failures']} failed requests")

        check = figures["exactly_once"] = check_exactly_once(db_url, Debtor.paid, fake)
        log(f"payments applied exactly once: {'OK' if check['ok'] else 'FAIL'} {check['counts']}")
        if not check["ok"]:
            failures.append("exactly-once check")
        log(f"README: {args.users} debtors for {args.seconds:g}s, gunicorn {args.workers} workers ({kind}): "
            f"{total['requests']} requests, {total['failures']} errors, {total['rps']:.0f} req/s, p50 "
            f"{total['p50_ms']:.0f} ms, p95 {total['p95_ms']:.0f} ms, p99 {total['p99_ms']:.0f} ms; "
            f"{len(Debtor.paid)} card payments, each applied exactly once: {'OK' if check['ok'] else 'FAIL'}")
    except BaseException as e:
        failures.append(f"{type(e).__name__}: {e}")
        raise
    finally:
        if server is not None:
            if failures:
                log(server.output()[-3000:])
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
