"""The Redis broker restarted under a busy Celery worker (`celery -A app:celery worker`,
private Redis without persistence, private PostgreSQL): the task it was running finishes, the
task queued behind it is lost with the broker's memory, and once the broker is back the beat
task `tick` finds that creditor's day not run and fans it out again. Each creditor's day
completes once: every reminder planned once, every message received once.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fakes.cli_process import app_env, celery_worker
from fakes.private_servers import PrivateRedis
from fault_support import (assert_dunning_exactly_once, database_url, engine_name, private_pg, seed_dunning,  # noqa: F401
                           slow_smtp)
from portal.extensions import db
from portal.models import Creditor, DunningDay


@pytest.fixture
def redis_server():
    reason = PrivateRedis.unavailable()
    if reason:
        pytest.skip(reason)
    server = PrivateRedis().start()
    yield server
    server.stop()


@pytest.fixture
def celery_app(redis_server):
    from fakes.celery_app import celery_on
    with celery_on(redis_server.url) as celery:
        yield celery


@pytest.fixture
def worker(private_pg, slow_smtp, redis_server, celery_app, tmp_path):
    env = app_env(private_pg.url, slow_smtp.url, CELERY_BROKER_URL=redis_server.url,
                  CELERY_RESULT_BACKEND=redis_server.url)
    with celery_worker(env, tmp_path / "worker.log") as proc:
        yield proc


def call(task, *args, timeout: float = 60):
    """Send a task and wait for its result, through a broker that may still be coming back."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return task.apply_async(args, retry=False).get(timeout=max(1.0, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 -- connection reset, not yet reconnected, result lost
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_broker_restarted_under_a_busy_worker(app, new_creditor, slow_smtp, redis_server, worker, celery_app):
    from dunning_jobs import tasks

    first, second = new_creditor("A"), new_creditor("B")
    tz = ZoneInfo(db.session.get(Creditor, first.id).timezone)
    today = datetime.now(tz).date()
    expected = {cid: seed_dunning(cid, today, debtors=4, prefix=prefix)
                for cid, prefix in ((first.id, "A"), (second.id, "B"))}
    for cid in (first.id, second.id):
        creditor = db.session.get(Creditor, cid)
        creditor.timezone, creditor.dunning_time = str(tz), "00:00"  # due at every tick
    db.session.commit()
    db.session.remove()
    handler = slow_smtp.handler

    # A's day runs and is held at its second message; B's day waits in the queue behind it.
    handler.hold("data", 2)
    tasks.run_creditor_day.delay(first.id, today.isoformat())
    assert handler.held.wait(60), "the worker never started A's day"
    tasks.run_creditor_day.delay(second.id, today.isoformat())

    redis_server.restart(down_for=0.5)  # the queue (and B's task with it) is gone
    handler.release()

    # Back: the worker reconnects and takes new work; tick finds B's day not run and fans it out.
    fanned = call(tasks.tick, timeout=90)
    assert fanned == [[second.id, today.isoformat()]], "B's day should have been lost with the queue"
    # The solo worker runs tasks in order: once this one is done, so are those tick queued.
    call(tasks.send_outbox)
    assert call(tasks.tick) == []
    assert call(tasks.send_outbox) == {"sent": 0, "failed": 0, "deferred": 0}

    days = db.session.execute(select(DunningDay.creditor_id, DunningDay.dunning_date)).all()
    assert sorted(days) == sorted([(first.id, today), (second.id, today)])
    received = list(handler.messages)
    for cid in (first.id, second.id):
        assert_dunning_exactly_once(expected[cid], received, creditor_id=cid)
    assert len(received) == sum(len({n.rsplit("-", 1)[0] for n in e}) for e in expected.values())
