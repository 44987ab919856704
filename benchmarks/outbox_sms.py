"""Benchmark of the outbox's SMS side against raw SDK calls, to the same fake Twilio server.

One creditor, --messages debtors with a mobile number, each with an invoice at an SMS step:
planned and composed (a Monday morning, so every SMS is due at once). Then, in turns
(--rounds), the same (number, text) pairs are sent
- raw: a loop of the official SDK's `client.messages.create(to=, from_=, body=)`, one Client;
- outbox: `outbox.send_pending()`, every message reset to pending before, which claims them,
  commits a handover before each request, records each sent with its SID, reminders, events.
Both talk HTTP to tests/fakes/twilio_server.py running in this process (a thread), so the
ratio is what the outbox's durability costs per message on top of the request itself.
Prints messages/s of each (median of the rounds) and the ratio outbox/raw; then a JSON line.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/outbox_sms.py [--messages 500] [--rounds 3]
        [--database-url postgresql+psycopg://...]   (default: a SQLite file in a temp dir)
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

AT = datetime(2026, 5, 11, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))  # a Monday morning


def setup(app, n: int) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from dunning_jobs import day as dunning_day
    from portal.extensions import db
    from portal.models import DunningPlan, DunningStep, OutboxMessage
    from portal.models.base import replaying
    from portal.services import ledger, plans, tenants

    creditor, _ = tenants.create_creditor(name="Bench SMS", email="bench@sms.test", password="correct horse battery",
                                          iban="FR7630006000011234567890189")
    for k in range(n):
        ref = f"B{k}"
        ledger.upsert_debtor(creditor, ref, {"name": f"Client {k}", "email": f"b{k}@example.com",
                                             "phone": f"+3361{k:07d}", "language": "fr" if k % 2 else "en"})
        ledger.upsert_invoice(creditor, ref, {"debtor_ref": ref, "issue_date": "2026-01-01",
                                              "due_date": (AT.date() - timedelta(days=1)).isoformat(),
                                              "amount": f"{100 + k}.50", "currency": "EUR"})
    db.session.commit()
    plans.ensure_default_plans(creditor.id)
    for step in db.session.scalars(select(DunningStep).join(DunningStep.plan).where(
            DunningPlan.creditor_id == creditor.id, DunningStep.code == "reminder_1")):
        step.channel = "sms"
    db.session.commit()
    with replaying(AT):
        dunning_day.plan_creditor(creditor, AT.date(), dunning_day.DayResult(date=str(AT.date())))
    db.session.commit()
    rows = db.session.execute(select(OutboxMessage.to_addr, OutboxMessage.text_body)
                              .where(OutboxMessage.channel == "sms")).all()
    if len(rows) != n:
        raise SystemExit(f"composed {len(rows)} SMS for {n} debtors")
    return [tuple(r) for r in rows]


def reset(app, fake) -> None:
    """Every SMS pending again, due now, no SID; the fake forgets what it received."""
    from sqlalchemy import update

    from portal.extensions import db
    from portal.models import OutboxMessage, Reminder, utcnow
    db.session.execute(update(OutboxMessage).where(OutboxMessage.channel == "sms").values(
        status="pending", provider_message_id=None, delivery_status=None, sent_at=None, attempts=0,
        next_attempt_at=utcnow()))
    db.session.execute(update(Reminder).where(Reminder.message_id.isnot(None)).values(status="planned"))
    db.session.commit()
    with fake.lock:
        fake.messages.clear()
        fake.created.clear()


def raw(fake, pairs) -> float:
    from twilio.rest import Client
    client = Client(fake.account_sid, fake.auth_token)
    client.api.base_url = fake.url
    started = time.perf_counter()
    for to, body in pairs:
        client.messages.create(to=to, from_=fake.sender, body=body)
    elapsed = time.perf_counter() - started
    assert len(fake.created) == len(pairs)
    return elapsed


def through_outbox(n: int, fake) -> float:
    from dunning_jobs import outbox
    started = time.perf_counter()
    sent = outbox.send_pending()
    elapsed = time.perf_counter() - started
    assert sent.sent == n and len(fake.created) == n, (sent, len(fake.created))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url")
    args = parser.parse_args()

    from fakes.twilio_server import FakeTwilio
    from portal import create_app
    from portal.extensions import db
    from support import migrate

    fake = FakeTwilio().start()
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{tmp.name}/bench.db"
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "RATELIMIT_ENABLED": False,
                      "RATELIMIT_STORAGE_URI": "memory://", "PORTAL_BASE_URL": "http://127.0.0.1:5000",
                      "TWILIO_ACCOUNT_SID": fake.account_sid, "TWILIO_AUTH_TOKEN": fake.auth_token,
                      "TWILIO_FROM": fake.sender, "TWILIO_API_BASE": fake.url})
    migrate(app)
    try:
        with app.app_context():
            pairs = setup(app, args.messages)
            times = {"raw": [], "outbox": []}
            for _ in range(args.rounds):
                reset(app, fake)
                times["raw"].append(raw(fake, pairs))
                reset(app, fake)
                times["outbox"].append(through_outbox(len(pairs), fake))
            db.session.remove()
    finally:
        fake.stop()
    rate = {k: args.messages / statistics.median(v) for k, v in times.items()}
    engine = url.split(":", 1)[0]
    print(f"SMS, {args.messages} messages, {args.rounds} rounds, {engine}, fake Twilio over HTTP (same process)")
    print(f"  raw SDK messages.create : {rate['raw']:8.1f} msg/s")
    print(f"  outbox.send_pending     : {rate['outbox']:8.1f} msg/s")
    print(f"  ratio outbox/raw        : {rate['outbox'] / rate['raw']:8.2f}")
    print(json.dumps({"engine": engine, "messages": args.messages, "rounds": args.rounds,
                      "raw_per_s": round(rate["raw"], 1), "outbox_per_s": round(rate["outbox"], 1),
                      "ratio": round(rate["outbox"] / rate["raw"], 3)}))


if __name__ == "__main__":
    main()
