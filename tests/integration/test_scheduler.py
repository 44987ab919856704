"""The in-process scheduler runs each creditor's day once, at its dunning time in its zone."""
from datetime import date, datetime, timezone

import pytest

from dunning_jobs import scheduler
from portal.extensions import db
from portal.models import Creditor, DunningDay


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url}


def test_each_day_runs_once_at_its_local_time(app, seeded, creditor, new_creditor, smtp_server):
    tokyo = new_creditor("Tokyo KK", timezone="Asia/Tokyo")
    # 2026-10-02 07:00 UTC is 09:00 in Paris and 16:00 in Tokyo; 06:00 UTC is 08:00 in Paris.
    early = datetime(2026, 10, 2, 6, 0, tzinfo=timezone.utc)
    assert [r.date for r in scheduler.tick(app, early)] == ["2026-10-02"]  # Tokyo only
    assert db.session.scalar(db.select(DunningDay.creditor_id)) == tokyo.id
    results = scheduler.tick(app, datetime(2026, 10, 2, 7, 0, tzinfo=timezone.utc))
    assert len(results) == 1 and results[0].planned == 1 and results[0].sent == 1  # Paris: F-1 reminder_1
    assert [m.rcpt_tos for m in smtp_server.handler.take()] == [["alpha@example.com"]]
    assert scheduler.tick(app, datetime(2026, 10, 2, 9, 0, tzinfo=timezone.utc)) == []  # already ran today
    days = db.session.execute(db.select(DunningDay.creditor_id, DunningDay.dunning_date)).all()
    assert sorted(days) == sorted([(tokyo.id, date(2026, 10, 2)), (creditor.id, date(2026, 10, 2))])


def test_dunning_time_is_the_creditors(app, creditor):
    row = db.session.get(Creditor, creditor.id)
    row.dunning_time = "10:00"
    db.session.commit()
    assert scheduler.due_creditors(datetime(2026, 10, 2, 7, 59, tzinfo=timezone.utc)) == []  # 09:59 Paris
    assert scheduler.due_creditors(datetime(2026, 10, 2, 8, 0, tzinfo=timezone.utc)) == [(creditor.id, date(2026, 10, 2))]
