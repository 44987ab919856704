"""Celery scale-out (CELERY_BROKER_URL): beat ticks every minute, each due creditor's day is
fanned out as its own task, and every task calls the same functions as the CLI.

    celery -A app:celery worker --loglevel=info
    celery -A app:celery beat

The tasks run in the Flask app that the entry point (app.py) binds here: this floor never builds
the app itself.
"""
from __future__ import annotations

import os
from datetime import date, datetime, timezone

from celery import Celery

from . import outbox, scheduler

celery = Celery("relance")
celery.conf.update(
    broker_url=os.environ.get("CELERY_BROKER_URL"),
    result_backend=os.environ.get("CELERY_RESULT_BACKEND") or os.environ.get("CELERY_BROKER_URL"),
    task_acks_late=True,  # a worker killed mid-task leaves it to another: the work is idempotent
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    timezone="UTC",
    beat_schedule={"dunning-tick": {"task": "dunning_jobs.tasks.tick", "schedule": 60.0}},
)
_app = None


def bind(flask_app):
    """Run the tasks in `flask_app`'s context; returns the Celery app for the entry point."""
    global _app
    _app = flask_app
    return celery


def flask_app():
    if _app is None:
        raise RuntimeError("no Flask app bound to the Celery tasks: start the worker with `celery -A app:celery worker`")
    return _app


@celery.task(name="dunning_jobs.tasks.tick")
def tick() -> list[list]:
    with flask_app().app_context():
        due = scheduler.due_creditors(datetime.now(timezone.utc))
    for creditor_id, day in due:
        run_creditor_day.delay(creditor_id, day.isoformat())
    send_outbox.delay()
    return [[cid, d.isoformat()] for cid, d in due]


@celery.task(name="dunning_jobs.tasks.run_creditor_day")
def run_creditor_day(creditor_id: int, day: str) -> dict:
    with flask_app().app_context():
        return scheduler.run_creditor_day(creditor_id, date.fromisoformat(day)).as_dict()


@celery.task(name="dunning_jobs.tasks.send_outbox")
def send_outbox() -> dict:
    with flask_app().app_context():
        r = outbox.send_pending()
        return {"sent": r.sent, "failed": r.failed, "deferred": r.deferred}
