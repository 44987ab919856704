"""PostgreSQL restarted (`pg_ctl restart -m fast`: transactions rolled back, every connection
cut) under a running `dunning run` and under webhook deliveries, on a private server of the
test's own. Nothing is lost and nothing is doubled: each (invoice, step) reminded once, each
message received by the SMTP server once, each payment recorded once.
"""
from __future__ import annotations

import json
import queue
import threading
import time
from collections import Counter
from datetime import date

import pytest
import requests
from sqlalchemy import select

from fakes.cli_process import app_env, flask, json_line
from fault_support import (assert_dunning_exactly_once, backends, connect, count, database_url, engine_name,  # noqa: F401
                           hold_planner_lock, private_pg, seed_dunning, slow_smtp, wait_until,
                           waiting_on_planner_lock)
from portal.extensions import db
from portal.models import Creditor, Invoice, Payment, PaymentAllocation, PaymentAttempt, WebhookEvent
from portal.services import ledger, payments

D = date(2026, 6, 15)


def finished(proc, timeout: float = 30) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_dunning_run_survives_postgres_restarts(app, creditor, private_pg, slow_smtp):
    expected = seed_dunning(creditor.id, D, debtors=12)
    debtors_due = len({number.rsplit("-", 1)[0] for number in expected})
    db.session.remove()
    env = app_env(private_pg.url, slow_smtp.url)
    handler = slow_smtp.handler

    # 1. Restarted while the run plans: the run waits inside its planning transaction (the test
    #    holds the planner's advisory lock) when the server goes down under it.
    lock = hold_planner_lock(private_pg, creditor.id)
    run = flask("dunning", "run", "--date", D.isoformat(), env=env)
    try:
        wait_until(lambda: waiting_on_planner_lock(private_pg), what="the run to wait on the planner lock")
        private_pg.restart()
        code, out, err = finished(run)
    finally:
        lock.close()
        if run.poll() is None:
            run.kill()
            run.wait()
    assert code != 0, f"the run cannot have completed through a restart:\n{out}"
    assert "OperationalError" in err or "AdminShutdown" in err, err[-2000:]
    assert handler.messages == []
    assert count(Creditor) == 1  # the test's own rows survived the restart
    from portal.models import Reminder
    assert count(Reminder) == 0  # the planning transaction was rolled back whole
    db.session.remove()

    # 2. Restarted while the run sends: the third message is held before the server's 354
    #    (claimed, not yet handed over) when PostgreSQL goes down; the two before it,
    #    handed over and delivered, may not be recorded yet: the next run records them.
    handler.hold("data", handler.counts["data"] + 3)
    run = flask("dunning", "run", "--date", D.isoformat(), env=env)
    try:
        assert handler.held.wait(45), f"the run never reached its third message: {run.communicate(timeout=5)}"
        private_pg.restart()
        handler.release()
        code, out, err = finished(run, timeout=20)  # it must not hang on its SMTP connection
    finally:
        handler.release()
        if run.poll() is None:
            run.kill()
            run.wait()
    assert code != 0, f"the run cannot have handed the held message over:\n{out}"
    assert len(handler.messages) == 2

    # 3. The next run completes the day: nothing planned again, the rest sent once.
    third = json_line(flask("dunning", "run", "--date", D.isoformat(), env=env))
    assert third == {"date": D.isoformat(), "planned": 0, "sent": debtors_due - 2, "awaiting_approval": 0,
                     "failed": 0, "held": 0}
    assert json_line(flask("dunning", "run", "--date", D.isoformat(), env=env)) == {
        "date": D.isoformat(), "planned": 0, "sent": 0, "awaiting_approval": 0, "failed": 0, "held": 0}
    assert len(handler.messages) == debtors_due
    assert_dunning_exactly_once(expected, handler.messages)


# --- webhooks ------------------------------------------------------------------------------

@pytest.fixture
def app_config(providers_config):
    return providers_config


PAYERS = 16
THREADS = 6


def seed_checkouts(creditor_id: int, fake) -> dict[str, int]:
    """One debtor and one open invoice per payer, each paid by card in the fake (webhooks held
    back); returns {invoice number: amount in cents}."""
    creditor = db.session.get(Creditor, creditor_id)
    amounts = {}
    for n in range(PAYERS):
        ref = f"P{n:02d}"
        debtor, _ = ledger.upsert_debtor(creditor, ref, {"name": f"Payer {n}", "email": f"p{n}@example.com",
                                                         "language": "fr"})
        cents = 10_000 + 37 * n
        ledger.upsert_invoice(creditor, f"{ref}-1", {"debtor_ref": ref, "issue_date": "2026-05-01",
                                                     "due_date": "2026-06-01", "amount": f"{cents / 100:.2f}",
                                                     "currency": "EUR"})
        attempt, _url = payments.start_card_payment(debtor.id, [f"{ref}-1"])
        fake.pay(attempt.provider_ref)
        amounts[f"{ref}-1"] = cents
    db.session.remove()
    return amounts


def test_webhooks_survive_postgres_restarts(app, creditor, private_pg, live_app, fake_stripe):
    fake_stripe.auto_deliver = False
    amounts = seed_checkouts(creditor.id, fake_stripe)
    events = list(fake_stripe.pending)
    assert Counter(e["type"] for e in events) == {"checkout.session.completed": PAYERS,
                                                  "payment_intent.succeeded": PAYERS}
    todo: queue.Queue = queue.Queue()
    for e in events:
        todo.put(e)
    answers: list[tuple[str, int | None]] = []  # (event id, status or None when unreachable)
    lock = threading.Lock()

    def post(event) -> int | None:
        body = json.dumps(event).encode()  # signed afresh for every attempt, as Stripe does
        try:
            return requests.post(live_app.url + "/webhooks/stripe", data=body, timeout=30, headers={
                "Content-Type": "application/json", "Stripe-Signature": fake_stripe.sign(body)}).status_code
        except requests.ConnectionError:
            return None

    def stripe_delivery():
        """Stripe's retry loop: an event not answered 2xx is delivered again later."""
        while True:
            try:
                event = todo.get_nowait()
            except queue.Empty:
                return
            for _ in range(50):
                status = post(event)
                with lock:
                    answers.append((event["id"], status))
                if status is not None and status < 300:
                    break
                time.sleep(0.1)

    # The first deliveries are held inside their transaction, their event claimed but not
    # committed, by a session of the test's holding every attempt's row lock: PostgreSQL restarts
    # under them (and under the holder).
    holder = connect(private_pg)
    holder.execute("BEGIN")
    holder.execute("SELECT id FROM payment_attempt FOR UPDATE")
    threads = [threading.Thread(target=stripe_delivery) for _ in range(THREADS)]
    for t in threads:
        t.start()
    wait_until(lambda: backends(private_pg, "wait_event_type = 'Lock'") >= THREADS,
               what="deliveries waiting on a row lock inside their transaction")
    private_pg.restart()
    holder.close()
    # A second restart while the rest flows, wherever it lands.
    wait_until(lambda: len(answers) >= THREADS + 6, what="deliveries after the first restart")
    private_pg.restart()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)

    failed = [eid for eid, status in answers if status is None or status >= 500]
    assert len(failed) >= THREADS, answers  # the held ones at least were refused and re-delivered
    last = {}
    for eid, status in answers:
        last[eid] = status
    assert set(last) == {e["id"] for e in events} and all(s == 200 for s in last.values()), last

    # Each event stored once, each payment recorded once, each invoice paid once in full.
    assert count(WebhookEvent) == len(events)
    payments_rows = db.session.execute(select(Payment.reference, Payment.amount)).all()
    assert len(payments_rows) == PAYERS and len({ref for ref, _ in payments_rows}) == PAYERS
    assert sorted(a for _, a in payments_rows) == sorted(amounts.values())
    allocated = dict(db.session.execute(select(Invoice.number, PaymentAllocation.amount)
                                        .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)).all())
    assert allocated == amounts
    assert count(PaymentAllocation) == PAYERS
    assert set(db.session.scalars(select(Invoice.status))) == {"paid"}
    assert set(db.session.scalars(select(PaymentAttempt.status))) == {"succeeded"}

    # Stripe delivering everything once more changes nothing.
    for e in events:
        assert post(e) == 200
    assert count(WebhookEvent) == len(events) and count(Payment) == PAYERS
