"""Benchmark of the debtor portal page (GET /portal/).

1. Creates a fresh PostgreSQL database, migrates it and seeds one creditor with two debtors:
   one with 10 open invoices, one with 200 (a quarter of them partially paid), plus a few
   settled invoices each.
2. Counts the SQL queries of one portal page for each debtor in-process (test client and a
   `before_cursor_execute` listener). Fails (exit 1) if the two counts differ or exceed 10,
   and then prints the queries that repeat.
3. Serves the app with gunicorn and a hello-world Flask app with the very same gunicorn
   settings (one after the other), and measures requests per second and latency with a
   keep-alive load generator in Python threads, sending `Accept-Encoding: gzip` as browsers do.
   Reports portal/hello; the goal (>= 0.3) is printed, never enforced. Then weighs a phone's
   first load of the 200-invoice page: the page and every stylesheet and script it names, as
   transferred with gzip (bodies plus response headers); the goal (<= 60 kB) is printed too.
4. Stops gunicorn and drops the database whatever happens.

The last line of output is one JSON object with every figure.

    .venv/bin/python benchmarks/portal_page.py [--seconds 10] [--clients 8] [--workers 2]
"""
from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


MAX_QUERIES = 10
RATIO_GOAL = 0.3
FIRST_LOAD_GOAL = 60_000  # bytes transferred, page + its CSS and scripts
BROWSER = {"Accept-Encoding": "gzip, deflate, br"}
SMALL, LARGE = 10, 200


def log(msg: str = "") -> None:
    print(msg, flush=True)


# --- database ------------------------------------------------------------------------------

from bench_db import create_database, drop_database  # noqa: E402


def _amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def seed(app) -> dict:
    """One creditor, two debtors; returns ids and invoice numbers per debtor."""
    from portal.services import ledger, tenants

    today = date.today()
    with app.app_context():
        creditor, _key = tenants.create_creditor(name="Bench SARL", email="bench@example.com",
                                                 password="bench-password", iban="FR7630006000011234567890189")
        out = {}
        for ref, count in (("SMALL", SMALL), ("LARGE", LARGE)):
            debtor, _ = ledger.upsert_debtor(creditor, ref, {"name": f"Debtor {ref}",
                                                             "email": f"{ref.lower()}@example.com",
                                                             "language": "fr"})
            numbers = []
            # `count` open invoices plus a few that get paid in full (the "recently settled" list).
            settled = max(2, count // 40)
            for i in range(1, count + settled + 1):
                number = f"{ref[0]}-{i:04d}"
                issue = today - timedelta(days=(i * 7) % 120)
                ledger.upsert_invoice(creditor, number, {
                    "debtor_ref": ref, "issue_date": issue.isoformat(),
                    "due_date": (issue + timedelta(days=30)).isoformat(),
                    "amount": _amount(10_000 + i * 317), "currency": "EUR"})
                if i > count:  # paid in full
                    ledger.record_offline_payment(creditor, number, {
                        "amount": _amount(10_000 + i * 317), "date": today.isoformat(), "reference": f"FULL-{number}"})
                    continue
                numbers.append(number)
                if i % 4 == 0:  # partially paid, still open
                    ledger.record_offline_payment(creditor, number, {
                        "amount": _amount(2_500 + i), "date": today.isoformat(), "reference": f"PART-{number}"})
            out[count] = {"debtor_id": debtor.id, "numbers": numbers}
        out["creditor_id"] = creditor.id
    return out


def issue_link_path(app, debtor_id: int) -> str:
    from portal.extensions import db
    from portal.models import Debtor
    from portal.services import links

    with app.app_context():
        issued = links.issue(db.session.get(Debtor, debtor_id), issued_by="cli")
        parts = urlsplit(issued.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


# --- query count ---------------------------------------------------------------------------

def _norm(statement: str) -> str:
    return re.sub(r"\s+", " ", statement).strip()


def count_queries(app, debtor_id: int, numbers: list[str], cached: bool = False) -> list[tuple[str, object]]:
    """The SQL statements run by one GET /portal/ (after a warm-up request) for this debtor:
    rendering the page (cache emptied first), or served from the page cache (`cached`)."""
    from portal.debtor.views import pages
    from sqlalchemy import event

    from portal.extensions import db

    path = issue_link_path(app, debtor_id)
    client = app.test_client()
    r = client.get(path)
    assert r.status_code == 303, f"opening the link gave {r.status_code}"
    r = client.get("/portal/")  # warm-up: templates compiled, connection pooled
    assert r.status_code == 200, f"portal page gave {r.status_code}"

    captured: list[tuple[str, object]] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    if not cached:
        pages.clear()
    event.listen(engine, "before_cursor_execute", listener)
    try:
        r = client.get("/portal/")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert r.status_code == 200, f"portal page gave {r.status_code}"
    html = r.get_data(as_text=True)
    missing = [n for n in numbers if n not in html]
    assert not missing, f"{len(missing)} open invoices missing from the page, e.g. {missing[:3]}"
    return captured


def report_queries(small: list, large: list) -> None:
    for label, queries in ((f"{SMALL} invoices", small), (f"{LARGE} invoices", large)):
        log(f"\n--- queries for the {label} page ({len(queries)}) ---")
        for i, (stmt, params) in enumerate(queries, 1):
            log(f"[{i}] {_norm(stmt)}\n     params: {params!r}")
    cs, cl = Counter(_norm(s) for s, _ in small), Counter(_norm(s) for s, _ in large)
    repeated = {s: n for s, n in cl.items() if n > 1}
    differing = {s: (cs.get(s, 0), cl.get(s, 0)) for s in set(cs) | set(cl) if cs.get(s, 0) != cl.get(s, 0)}
    if repeated:
        log(f"\n--- statements repeated within the {LARGE}-invoice page ---")
        for s, n in sorted(repeated.items(), key=lambda kv: -kv[1]):
            log(f"x{n}: {s}")
    if differing:
        log(f"\n--- statements whose count differs ({SMALL} vs {LARGE} invoices) ---")
        for s, (a, b) in sorted(differing.items(), key=lambda kv: -kv[1][1]):
            log(f"{a} vs {b}: {s}")


# --- gunicorn ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """One gunicorn master for `module`, same settings whatever the app."""

    def __init__(self, module: str, workers: int, env: dict, ready_path: str, threads: int = 1):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="relance-bench-gunicorn-", suffix=".log", delete=False)
        # threads > 1: gthread workers, whose threads overlap waits on the database and providers.
        worker = ["--worker-class", "sync"] if threads == 1 else ["--worker-class", "gthread", "--threads", str(threads)]
        self.cmd = [sys.executable, "-m", "gunicorn", "--chdir", str(ROOT), "--workers", str(workers), *worker,
                    "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", module]
        self.proc = subprocess.Popen(self.cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_ready(ready_path)

    def _wait_ready(self, path: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.output()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        try:
            return Path(self.log.name).read_text()[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


# --- load generator ------------------------------------------------------------------------

def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def load(port: int, path: str, headers: dict, clients: int, seconds: float, warmup: float,
         expect: str | None = None) -> dict:
    """`clients` threads, each on its own keep-alive connection (http.client reopens it when the
    server closes it), hammering GET `path`; only requests that finish inside the measured window
    (after the warm-up) count."""
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    results: list[tuple[list[float], int, int]] = []
    lock = threading.Lock()
    first_error: list[str] = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat, ok, errors = [], 0, 0
        checked = False
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                if resp.getheader("Content-Encoding") == "gzip" and not checked:
                    body = gzip.decompress(body)  # read whole once per client: a browser's work, not ours
                good = resp.status == 200 and (expect is None or checked or expect.encode() in body)
                checked = checked or good
                if not good and not first_error:
                    first_error.append(f"HTTP {resp.status}: {body[:200]!r}")
            except (OSError, http.client.HTTPException) as e:
                good = False
                if not first_error:
                    first_error.append(repr(e))
                conn.close()
            t1 = time.perf_counter()
            # Throughput = completions inside the window; a request still in flight at the end is dropped.
            if measure_from <= t1 <= stop_at:
                if good:
                    ok += 1
                    lat.append(t1 - t0)
                else:
                    errors += 1
        conn.close()
        with lock:
            results.append((lat, ok, errors))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies = sorted(x for lat, _, _ in results for x in lat)
    ok = sum(r[1] for r in results)
    errors = sum(r[2] for r in results)
    return {"requests": ok, "errors": errors, "rps": round(ok / seconds, 1),
            "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
            "p95_ms": round(_percentile(latencies, 0.95) * 1000, 2),
            "first_error": first_error[0] if first_error else None}


def first_load(port: int, cookie: str) -> dict:
    """What a phone downloads on its first visit (empty cache): the page, then each stylesheet
    and script it names, each with gzip accepted; bodies and response headers counted."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    parts = {}

    def get(path, headers):
        conn.request("GET", path, headers={**BROWSER, **headers})
        resp = conn.getresponse()
        body = resp.read()
        head = sum(len(k) + len(v) + 4 for k, v in resp.getheaders()) + 17
        parts[path] = {"status": resp.status, "bytes": len(body) + head,
                       "encoding": resp.getheader("Content-Encoding") or "identity"}
        return gzip.decompress(body) if resp.getheader("Content-Encoding") == "gzip" else body

    html = get("/portal/", {"Cookie": cookie}).decode()
    for path in dict.fromkeys(re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', html)):
        get(path, {})
    conn.close()
    total = sum(p["bytes"] for p in parts.values())
    return {"bytes": total, "html_bytes": len(html.encode()), "parts": parts, "goal": FIRST_LOAD_GOAL,
            "met": total <= FIRST_LOAD_GOAL and all(p["status"] == 200 for p in parts.values())}


def session_cookie(port: int, link_path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", link_path)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    if resp.status != 303:
        raise RuntimeError(f"opening the link over HTTP gave {resp.status}")
    for header, value in resp.getheaders():
        if header.lower() == "set-cookie" and value.startswith("session="):
            return value.split(";", 1)[0]
    raise RuntimeError("no session cookie after opening the link")


# --- main ----------------------------------------------------------------------------------

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="measured duration per target (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured warm-up per target (default 2)")
    p.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients (default 8)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads per worker: 1 = sync workers (default), more = gthread workers, for both targets")
    p.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="maintenance database URL used to create and drop the bench database")
    p.add_argument("--show-queries", action="store_true", help="print the SQL of both pages even when the count is fine")
    args = p.parse_args()

    # SIGTERM goes through the same clean-up as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import db

    figures: dict = {"seconds": args.seconds, "clients": args.clients, "workers": args.workers,
                     "threads": args.threads}
    failures: list[str] = []
    servers: list[Gunicorn] = []
    db_name = app = None
    try:
        db_name, db_url = create_database(args.pg_url)
        log(f"database: {db_name}")
        secret = secrets.token_urlsafe(32)
        base_url = "http://127.0.0.1:5000"
        app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": secret, "RATELIMIT_ENABLED": False,
                          "RATELIMIT_STORAGE_URI": "memory://", "PORTAL_BASE_URL": base_url})
        with app.app_context():
            upgrade()
        t0 = time.perf_counter()
        seeded = seed(app)
        log(f"seeded: 1 creditor, debtors with {SMALL} and {LARGE} open invoices "
            f"({time.perf_counter() - t0:.1f}s)")

        # 2. queries per page
        small = count_queries(app, seeded[SMALL]["debtor_id"], seeded[SMALL]["numbers"])
        large = count_queries(app, seeded[LARGE]["debtor_id"], seeded[LARGE]["numbers"])
        warm = count_queries(app, seeded[LARGE]["debtor_id"], seeded[LARGE]["numbers"], cached=True)
        queries_ok = len(small) == len(large) and len(large) <= MAX_QUERIES
        figures["queries"] = {str(SMALL): len(small), str(LARGE): len(large), "cached": len(warm),
                              "max": MAX_QUERIES, "ok": queries_ok}
        log(f"queries per portal page served from the page cache: {len(warm)}")
        log(f"queries per portal page: {len(small)} ({SMALL} invoices), {len(large)} ({LARGE} invoices) "
            f"-> {'OK' if queries_ok else 'FAIL'} (goal: equal and <= {MAX_QUERIES})")
        if not queries_ok:
            failures.append("query count")
        if not queries_ok or args.show_queries:
            report_queries(small, large)
        with app.app_context():
            db.engine.dispose()

        # 3. throughput, same gunicorn settings for both apps, one after the other
        env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": secret, "RATELIMIT_ENABLED": "0",
               "PORTAL_BASE_URL": base_url}
        log(f"load: {args.clients} clients, {args.warmup:g}s warm-up + {args.seconds:g}s measured per target, "
            f"gunicorn {args.workers} " + ("sync workers" if args.threads == 1 else f"gthread workers x {args.threads} threads"))

        server = Gunicorn("benchmarks.hello:app", args.workers, env, "/", threads=args.threads)
        servers.append(server)
        hello = load(server.port, "/", dict(BROWSER), args.clients, args.seconds, args.warmup, expect="hello")
        server.stop()
        servers.remove(server)
        figures["hello"] = hello
        log(f"hello : {hello['rps']:8.1f} req/s  p50 {hello['p50_ms']:7.2f} ms  p95 {hello['p95_ms']:7.2f} ms  "
            f"({hello['requests']} ok, {hello['errors']} errors)")

        server = Gunicorn("benchmarks.wsgi_app:app", args.workers, env, "/healthz", threads=args.threads)
        servers.append(server)
        cookie = session_cookie(server.port, issue_link_path(app, seeded[LARGE]["debtor_id"]))
        with app.app_context():
            db.engine.dispose()
        last = seeded[LARGE]["numbers"][-1]  # the page is whole only if the last open invoice is there
        weight = first_load(server.port, cookie)
        figures["first_load"] = weight
        log(f"first load on a phone: {weight['bytes']} bytes transferred ({weight['html_bytes']} bytes of HTML "
            f"before compression) -> goal <= {FIRST_LOAD_GOAL} {'met' if weight['met'] else 'NOT met'}")
        for path, part in weight["parts"].items():
            log(f"  {path}: {part['bytes']} bytes ({part['encoding']}, HTTP {part['status']})")
        portal = load(server.port, "/portal/", {"Cookie": cookie, **BROWSER}, args.clients, args.seconds,
                      args.warmup, expect=last)
        server.stop()
        servers.remove(server)
        figures["portal"] = portal
        log(f"portal: {portal['rps']:8.1f} req/s  p50 {portal['p50_ms']:7.2f} ms  p95 {portal['p95_ms']:7.2f} ms  "
            f"({portal['requests']} ok, {portal['errors']} errors; {LARGE}-invoice debtor)")

        for name, r in (("hello", hello), ("portal", portal)):
            if r["errors"] or not r["requests"]:
                failures.append(f"{name} errors")
                log(f"{name}: {r['errors']} failed requests, first: {r['first_error']}")
        ratio = round(portal["rps"] / hello["rps"], 3) if hello["rps"] else None
        figures["ratio"] = ratio
        figures["ratio_goal"] = RATIO_GOAL
        figures["ratio_met"] = ratio is not None and ratio >= RATIO_GOAL
        log(f"ratio portal/hello: {ratio} -> goal >= {RATIO_GOAL} {'met' if figures['ratio_met'] else 'NOT met'}")
    except BaseException as e:
        failures.append(f"{type(e).__name__}: {e}")
        raise
    finally:
        for server in servers:
            server.stop()
        if app is not None:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        if db_name:
            drop_database(args.pg_url, db_name)
            log(f"dropped database {db_name}")
        figures["failures"] = failures
        figures["ok"] = not failures
        print(json.dumps(figures), flush=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
