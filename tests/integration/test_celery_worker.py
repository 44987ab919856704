"""Scale-out (CONTRACT §2 CELERY_BROKER_URL): a real Celery worker on the real Redis broker runs a
creditor's dunning day on PostgreSQL and sends through a real SMTP server; the beat task `tick`
fans each due creditor's day out as its own task."""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fakes.cli_process import app_env, celery_worker
from portal.extensions import db
from portal.models import Creditor, DunningDay, OutboxMessage
from portal.services import ledger

REDIS_URL = os.environ.get("TEST_REDIS_URL")
PG_URL = os.environ.get("TEST_DATABASE_URL")
#: a Redis database of its own, flushed at the start: other tests' keys never meet the worker's
REDIS_DB = 15

pytestmark = pytest.mark.skipif(not (REDIS_URL and PG_URL),
                                reason="a Celery worker needs TEST_REDIS_URL (broker) and TEST_DATABASE_URL")


@pytest.fixture
def engine_name():
    return "postgresql"  # the worker is another process: SQLite's single writer is not its place


@pytest.fixture
def broker_url():
    import redis

    url = urlsplit(REDIS_URL)._replace(path=f"/{REDIS_DB}").geturl()
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def celery_app(broker_url):
    """The project's Celery app, pointed at the test broker in this (the calling) process."""
    from fakes.celery_app import celery_on
    with celery_on(broker_url) as celery:
        yield celery


@pytest.fixture
def worker(database_url, smtp_server, broker_url, celery_app, tmp_path):
    env = app_env(database_url, smtp_server.url, CELERY_BROKER_URL=broker_url, CELERY_RESULT_BACKEND=broker_url,
                  MAIL_FROM="Atelier Test <relances@atelier.test>")
    with celery_worker(env, tmp_path / "worker.log") as proc:
        yield proc


def seed(creditor_id: int, today):
    """Five debtors; on `today - 10` two of them are a day late, on `today` all have a step due."""
    creditor = db.session.get(Creditor, creditor_id)
    for n in range(5):
        ledger.upsert_debtor(creditor, f"W{n}", {"name": f"Client {n}", "email": f"w{n}@example.com",
                                                 "language": "fr"})
        # W0, W1: due 11 days ago (reminder_1 on today-10, reminder_2 today); others: due in 7 days
        due = today - timedelta(days=11) if n < 2 else today + timedelta(days=7)
        ledger.upsert_invoice(creditor, f"W-{n}", {"debtor_ref": f"W{n}", "issue_date": "2026-01-01",
                                                   "due_date": due.isoformat(), "amount": "250.00",
                                                   "currency": "EUR"})
    creditor.dunning_time = "00:00"  # due at every tick
    db.session.commit()


def test_worker_runs_a_creditor_day_and_tick_fans_out(app, creditor, smtp_server, worker, celery_app):
    from dunning_jobs import tasks

    tz = ZoneInfo(db.session.get(Creditor, creditor.id).timezone)
    today = datetime.now(tz).date()
    seed(creditor.id, today)
    earlier = today - timedelta(days=10)
    db.session.remove()

    result = tasks.run_creditor_day.delay(creditor.id, earlier.isoformat()).get(timeout=60)
    assert result == {"date": earlier.isoformat(), "planned": 2, "sent": 2, "awaiting_approval": 0, "failed": 0,
                      "held": 0}
    first = smtp_server.handler.take()
    assert sorted(r.rcpt_tos[0] for r in first) == ["w0@example.com", "w1@example.com"]
    assert all("W-0" in r.text() or "W-1" in r.text() for r in first)

    # The beat task: the creditor's day (today, dunning time 00:00) is due; it runs as its own task.
    due = tasks.tick.delay().get(timeout=60)
    assert due == [[creditor.id, today.isoformat()]]
    # The worker is solo and takes tasks in order: once this one is done, so are those tick queued.
    assert tasks.send_outbox.delay().get(timeout=60) == {"sent": 0, "failed": 0, "deferred": 0}
    second = smtp_server.handler.take()
    assert sorted(r.rcpt_tos[0] for r in second) == [f"w{n}@example.com" for n in range(5)]
    ids = [r.message["Message-ID"] for r in first + second]
    assert len(set(ids)) == 7
    assert set(ids) == set(db.session.scalars(select(OutboxMessage.message_id_header)
                                              .where(OutboxMessage.status == "sent")))
    assert set(db.session.scalars(select(DunningDay.dunning_date))) == {earlier, today}

    # Nothing left due: the next tick fans out nothing and nothing more is sent.
    assert tasks.tick.delay().get(timeout=60) == []
    assert tasks.send_outbox.delay().get(timeout=60) == {"sent": 0, "failed": 0, "deferred": 0}
    assert smtp_server.handler.take() == []
