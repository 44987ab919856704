"""The daily digest of notices: one e-mail per digest user per day, listing from the event log
the disputes, broken promises and money taken back since their last digest; immediate users get
none; it runs with the dunning day."""
from datetime import timedelta

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from dunning_jobs import day as dunning_day
from dunning_jobs.digest import send_digests
from portal.domain.calendar import today_for
from portal.extensions import db
from portal.models import Creditor, CreditorUser, Debtor, Event, Invoice, OutboxMessage
from portal.services import dashboard, events
from support import Api


@pytest.fixture
def team(app, new_creditor):
    """A creditor (English) with three users: the owner (immediate, the default), Dana and Dev
    (they choose the digest), two debtors with an invoice each; and a second creditor."""
    info = new_creditor("Digest Co", language="en")
    creditor = db.session.get(Creditor, info.id)
    for email in ("dana@digest.test", "dev@digest.test"):
        db.session.add(CreditorUser(creditor_id=info.id, email=email,
                                    password_hash=generate_password_hash("correct horse battery")))
    db.session.commit()
    api = Api(app.test_client(), info)
    for ref, name in (("D1", "Delta GmbH"), ("D2", "Echo BV")):
        assert api.put(f"/debtors/{ref}", json={"name": name, "email": f"{ref}@x.test", "language": "en"}).status_code == 201
        assert api.put(f"/invoices/{ref}-INV", json={"debtor_ref": ref, "issue_date": "2026-01-01",
                                                     "due_date": "2026-01-31", "amount": "100.00",
                                                     "currency": "EUR"}).status_code == 201
    other = new_creditor("Other Co", language="en")
    oapi = Api(app.test_client(), other)
    oapi.put("/debtors/Z1", json={"name": "Zulu", "language": "en"})
    return info, creditor, other


def _ids(creditor_id, *refs):
    return [db.session.scalar(select(Debtor.id).where(Debtor.creditor_id == creditor_id, Debtor.ref == r)) for r in refs]


def _invoice(creditor_id, number):
    return db.session.scalar(select(Invoice.id).where(Invoice.creditor_id == creditor_id, Invoice.number == number))


def _user(email):
    return db.session.scalar(select(CreditorUser).where(CreditorUser.email == email)
                             .execution_options(populate_existing=True))


def _notice(type_, creditor_id, debtor_id, invoice_id=None, actor="system", **data):
    """What the dispute, promise and payment services write: an event in the log (and, for
    immediate users, an e-mail through alerts.notify — not what is tested here)."""
    e = events.record(type_, creditor_id=creditor_id, debtor_id=debtor_id, invoice_id=invoice_id, actor=actor,
                      **data)
    db.session.commit()
    return e


def _digests():
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "digest")
                              .order_by(OutboxMessage.id)).all()


def test_digest_one_per_user_per_day_with_the_right_events(app, client, team):
    info, creditor, other = team
    d1, d2 = _ids(info.id, "D1", "D2")
    (z1,) = _ids(other.id, "Z1")
    inv1 = _invoice(info.id, "D1-INV")

    # Before anyone chose the digest: these were e-mailed at once, never listed again.
    early = _notice("dispute.opened", info.id, d2, reason="other")
    early.at -= timedelta(minutes=5)
    db.session.commit()

    # Dana chooses the digest on the notifications page, Dev through the same service.
    r = client.post("/app/login", data={"email": "dana@digest.test", "password": "correct horse battery"})
    assert r.status_code == 302
    assert client.post("/app/notifications", data={"notify": "digest"}).status_code == 302
    assert dashboard.set_notify(_user("dev@digest.test"), "digest") is True

    listed = [
        _notice("dispute.opened", info.id, d1, inv1, reason="wrong_amount"),
        _notice("promise.broken", info.id, d2, promise_id=1),
        _notice("payment.charged_back", info.id, d1, provider="stripe", amount=5000, currency="EUR"),
        _notice("payment.refunded", info.id, d2, provider="stripe", amount=1500, currency="EUR"),
        _notice("payment.reversed", info.id, d1, provider="gocardless", amount=10000, currency="EUR"),
        _notice("payment.failed", info.id, d2, provider="gocardless", amount=10000, currency="EUR"),
        _notice("dispute.replied", info.id, d1, inv1, actor="debtor", dispute_id=1, message_id=2),
    ]
    not_listed = [
        _notice("dispute.replied", info.id, d1, inv1, actor="creditor", dispute_id=1, message_id=1),  # its own
        _notice("payment.failed", info.id, d1, provider="stripe", amount=100, currency="EUR"),  # a card attempt
        _notice("portal.opened", info.id, d1),
        _notice("payment.received", info.id, d1, provider="offline", amount=100, currency="EUR", reference="X"),
        _notice("dispute.opened", other.id, z1, reason="other"),  # another creditor's
    ]
    assert not_listed

    tomorrow = today_for(creditor) + timedelta(days=1)
    assert send_digests(creditor, tomorrow) == 2
    digests = _digests()
    assert sorted(m.to_addr for m in digests) == ["dana@digest.test", "dev@digest.test"]  # not the owner
    for m in digests:
        assert m.creditor_id == info.id and m.status == "pending" and m.channel == "email"
        assert m.debtor_id == d1  # the debtor of the first event listed
        assert m.daily_key == f"digest:{_user(m.to_addr).id}:{tomorrow.isoformat()}"
        assert m.subject.startswith("Relance daily digest: 7 notices")
        body = m.text_body
        for words in ("Opened a dispute", "Broke the promise to pay", "Chargeback: €50.00 taken back",
                      "Refunded: €15.00", "Direct debit failed after confirmation: €100.00 taken back",
                      "Direct debit failed: €100.00", "New message in a dispute", "Delta GmbH (D1)", "Echo BV (D2)", "D1-INV",
                      "http://portal.test/app/debtors/D1", "http://portal.test/app/notifications"):
            assert words in body, words
        assert body.count("\n- ") == len(listed)
        assert "Payment failed" not in body and "Opened the portal" not in body and "Zulu" not in body
        assert "Direct debit failed: €1.00" not in body
        assert "<li>" in m.html_body and "Delta GmbH" in m.html_body
    assert _user("dana@digest.test").last_digest_on == tomorrow
    assert _user(info.email).last_digest_on is None  # immediate: untouched

    # Once a day: again, and through the dunning day, nothing more.
    assert send_digests(creditor, tomorrow) == 0
    dunning_day.run(tomorrow, creditor_ids=[info.id])
    assert len(_digests()) == 2

    # The next day: nothing happened, so nothing is sent, but the day is done.
    after = tomorrow + timedelta(days=1)
    assert send_digests(creditor, after) == 0
    assert len(_digests()) == 2
    assert _user("dev@digest.test").last_digest_on == after

    # A notice dated on `after` (creditor's time) comes in the digest of the day following it, alone.
    late = _notice("promise.broken", info.id, d2, promise_id=2)
    late.at = listed[0].at + timedelta(days=2)
    db.session.commit()
    assert send_digests(creditor, after + timedelta(days=1)) == 2
    newest = _digests()[2:]
    assert len(newest) == 2
    for m in newest:
        assert m.subject.startswith("Relance daily digest: 1 notice")
        assert m.debtor_id == d2
        assert m.text_body.count("\n- ") == 1 and "Broke the promise to pay" in m.text_body


def test_immediate_users_get_no_digest(app, team):
    info, creditor, _other = team
    d1, = _ids(info.id, "D1")
    _notice("dispute.opened", info.id, d1, reason="other")
    assert send_digests(creditor, today_for(creditor) + timedelta(days=1)) == 0
    assert _digests() == []
    assert all(u.last_digest_on is None for u in db.session.scalars(select(CreditorUser)))


def test_digest_runs_with_the_dunning_day_and_is_sent(app, team):
    info, creditor, _other = team
    d1, = _ids(info.id, "D1")
    dashboard.set_notify(_user("dana@digest.test"), "digest")
    _notice("promise.broken", info.id, d1, promise_id=9)
    tomorrow = today_for(creditor) + timedelta(days=1)
    dunning_day.run(tomorrow, creditor_ids=[info.id])
    (m,) = _digests()
    assert m.to_addr == "dana@digest.test"
    assert m.status == "sent"  # no SMTP_URL: the outbox is the mailbox
    sent = db.session.scalars(select(Event).where(Event.type == "message.sent",
                                                  Event.creditor_id == info.id)).all()
    assert any(e.data.get("kind") == "digest" for e in sent)
    # A second run of the same day writes no second digest.
    dunning_day.run(tomorrow, creditor_ids=[info.id])
    assert len(_digests()) == 1


def test_concurrent_runs_write_one_digest_per_user(make_app, app, team, engine_name):
    """Several workers running the same creditor's day at once (PostgreSQL: row locks)."""
    if engine_name != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite runs one dunning run at a time)")
    import threading

    info, creditor, _other = team
    d1, = _ids(info.id, "D1")
    for email in ("dana@digest.test", "dev@digest.test"):
        dashboard.set_notify(_user(email), "digest")
    _notice("dispute.opened", info.id, d1, reason="other")
    tomorrow = today_for(creditor) + timedelta(days=1)
    # A worker that fails before the barrier breaks it (timeout) instead of holding the others there.
    barrier, errors, written = threading.Barrier(4, timeout=30), [], []

    # One app per worker, built here: building apps is not what runs concurrently in production.
    apps = [make_app() for _ in range(4)]

    def worker(worker_app):
        try:
            with worker_app.app_context():
                c = db.session.get(Creditor, info.id)
                barrier.wait()
                written.append(send_digests(c, tomorrow))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(written) == 2
    db.session.rollback()
    assert sorted(m.to_addr for m in _digests()) == ["dana@digest.test", "dev@digest.test"]
