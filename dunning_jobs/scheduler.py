"""When each creditor's day is due (its dunning time in its own time zone), and the in-process
loop that `make run` uses when no Celery broker is configured."""
from __future__ import annotations

import threading
import time
from datetime import date, datetime, timezone

from flask import Flask
from sqlalchemy import select

from portal.domain.calendar import local_now
from portal.extensions import db
from portal.models import Creditor, DunningDay

from . import day as dunning_day
from . import outbox


def due_creditors(now: datetime) -> list[tuple[int, date]]:
    """(creditor id, local date) for every creditor past its dunning time whose day has not run."""
    out = []
    for creditor in db.session.scalars(select(Creditor)):
        local = local_now(creditor.timezone, now)
        if local.strftime("%H:%M") < creditor.dunning_time:
            continue
        ran = db.session.scalar(select(DunningDay.id).where(DunningDay.creditor_id == creditor.id,
                                                           DunningDay.dunning_date == local.date()))
        if ran is None:
            out.append((creditor.id, local.date()))
    db.session.commit()
    return out


def run_creditor_day(creditor_id: int, day: date) -> dunning_day.DayResult:
    return dunning_day.run(day, creditor_ids=[creditor_id])


def tick(app: Flask, now: datetime | None = None) -> list[dunning_day.DayResult]:
    """One pass: run every due creditor's day, then retry what waits in the outbox."""
    with app.app_context():
        results = []
        for cid, day in due_creditors(now or datetime.now(timezone.utc)):
            try:  # a creditor's failure is recorded by the run itself; anything else stops no other creditor
                results.append(run_creditor_day(cid, day))
            except Exception:  # noqa: BLE001
                db.session.rollback()
                app.logger.exception("dunning day of creditor %s failed", cid)
        outbox.send_pending()
        db.session.remove()
        return results


def start_in_process(app: Flask, interval: float = 60.0) -> threading.Thread:
    """A daemon thread ticking every minute inside the web process (no broker needed)."""
    def loop():
        while True:
            try:
                tick(app)
            except Exception:  # keep the loop alive; the next tick retries
                app.logger.exception("dunning tick failed")
            time.sleep(interval)

    thread = threading.Thread(target=loop, name="relance-dunning", daemon=True)
    thread.start()
    return thread
