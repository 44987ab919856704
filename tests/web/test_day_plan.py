"""The day's plan and the hold: the back office shows what today's run will plan (the planner's
own statement, rolled back: nothing recorded) and what is planned and not sent; a creditor who
holds its days gets them planned but nothing sent by any path until a person releases the day."""
from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select

from dunning_jobs import day as dunning_day
from dunning_jobs import outbox, scheduler
from portal.domain.calendar import today_for
from portal.extensions import db
from portal.models import Creditor, DunningDay, Event, Invoice, OutboxMessage, Reminder
from support import back_office_login, flashes, response_text


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url}


@pytest.fixture
def bo(client, creditor):
    return back_office_login(client, creditor)


def rows(model, *where):
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def shown_steps(page) -> dict[str, int]:
    """Step code -> what the next run would plan, read from the page's table."""
    return {code: int(n) for code, n in re.findall(
        r'<tr id="step-(\w+)">.*?<td class="num" data-label="[^"]*">(\d+)</td>', page, re.S) if int(n)}


def test_the_plan_shows_what_the_run_will_plan_and_records_nothing(bo, app, creditor, seeded):
    today = today_for(db.session.get(Creditor, creditor.id))
    events_before = rows(Event)
    r = bo.get("/app/day")
    assert r.status_code == 200
    page = response_text(r)
    assert rows(Reminder) == 0 and rows(Event) == events_before  # nothing recorded
    steps = shown_steps(page)
    assert steps and "Alpha SARL" in page and "Beta Ltd" in page
    shown = set(re.findall(r'href="/app/invoices/(F-\d)">', page))

    # The run plans exactly what the page showed, step by step.
    dunning_day.run(today, creditor_ids=[creditor.id])
    db.session.rollback()
    planned = db.session.execute(select(Reminder.step_code, Invoice.number).join(
        Invoice, Invoice.id == Reminder.invoice_id).where(Reminder.creditor_id == creditor.id)).all()
    assert Counter(code for code, _n in planned) == steps
    assert {n for _c, n in planned} == shown
    # Planned and gone: the next run would add nothing.
    assert shown_steps(response_text(bo.get("/app/day"))) == {}


def test_a_held_day_sends_nothing_until_released(bo, app, creditor, seeded, smtp_server):
    page = response_text(bo.get("/app/day"))
    assert "Retenir chaque journée jusqu'à mon feu vert" in page  # off by default
    r = bo.post("/app/day/hold", data={"hold": "1"}, follow_redirects=True)
    assert "les envois de chaque journée attendent votre feu vert" in response_text(r)
    assert db.session.get(Creditor, creditor.id).hold_dunning is True
    db.session.rollback()

    # The scheduler's day (09:00 in Paris on 2 October): planned, held, nothing in the outbox.
    [result] = scheduler.tick(app, datetime(2026, 10, 2, 7, 0, tzinfo=timezone.utc))
    assert (result.planned, result.sent, result.held) == (1, 0, 1)
    assert dunning_day.run(date(2026, 10, 2)).as_dict()["held"] == 1  # again: still held, still nothing
    outbox.send_pending()
    assert smtp_server.handler.take() == []
    assert rows(OutboxMessage) == 0
    assert rows(DunningDay, DunningDay.held.is_(True), DunningDay.released_at.is_(None)) == 1

    page = response_text(bo.get("/app/day"))
    assert "Envois du 2 oct. 2026 retenus" in page and "planifiée, pas encore rédigée" in page
    assert "1 journée de relance retenue jusqu'à votre feu vert" in response_text(bo.get("/app/dashboard"))

    # Released by a person: recorded, composed, and the next outbox pass sends it.
    r = bo.post("/app/day/release", data={"day": "2026-10-02"}, follow_redirects=True)
    assert flashes(response_text(r)) == [
        "Envois du 2 octobre 2026 libérés\u00a0: 1 message part au prochain passage de la boîte d'envoi."]
    db.session.rollback()
    held = db.session.scalar(select(DunningDay))
    assert held.released_at is not None and held.released_by == creditor.email
    [event] = db.session.scalars(select(Event).where(Event.type == "dunning.released")).all()
    assert event.data == {"user": creditor.email, "date": "2026-10-02"}
    assert scheduler.tick(app, datetime(2026, 10, 2, 7, 5, tzinfo=timezone.utc)) == []  # outbox pass only
    assert [m.rcpt_tos for m in smtp_server.handler.take()] == [["alpha@example.com"]]
    again = bo.post("/app/day/release", data={"day": "2026-10-02"}, follow_redirects=True)
    assert flashes(response_text(again)) == ["Aucune journée retenue à libérer."]


def test_the_hold_is_offered_after_an_import(bo, app, creditor, tmp_path):
    from portal.services.imports import import_csv
    csv = (b"debtor_ref,debtor_name,debtor_email,invoice_number,issue_date,due_date,amount,currency\n"
           b"D9,Delta,delta@example.com,F-9,2026-09-01,2026-10-01,10.00,EUR\n")
    assert "offer-hold" not in response_text(bo.get("/app/dashboard"))
    import_csv(db.session.get(Creditor, creditor.id), csv, actor="import")
    page = response_text(bo.get("/app/dashboard"))
    assert 'id="offer-hold"' in page and 'href="/app/day"' in page
    assert "Vous avez importé des factures depuis la dernière relance" in response_text(bo.get("/app/day"))


def test_the_creditor_sets_when_its_day_runs(bo, app, creditor):
    """The day page sets the run's time (creditor's zone): the scheduler follows it; a time at night,
    or not a time at all, is refused and changes nothing."""
    for bad in ("05:45", "21:00", "9h", "", "25:00"):
        r = bo.post("/app/day/time", data={"dunning_time": bad}, follow_redirects=True)
        assert flashes(response_text(r)) == ["Indiquez une heure entre 06:00 et 20:00."], bad
    db.session.rollback()
    assert db.session.get(Creditor, creditor.id).dunning_time == "08:30"
    r = bo.post("/app/day/time", data={"dunning_time": "10:15"}, follow_redirects=True)
    assert 'value="10:15"' in response_text(r)
    db.session.rollback()
    assert db.session.get(Creditor, creditor.id).dunning_time == "10:15"
    assert rows(Event, Event.type == "creditor.dunning_time_changed") == 1
    assert scheduler.due_creditors(datetime(2026, 10, 2, 8, 14, tzinfo=timezone.utc)) == []  # 10:14 in Paris
    assert scheduler.due_creditors(datetime(2026, 10, 2, 8, 15, tzinfo=timezone.utc)) == [(creditor.id, date(2026, 10, 2))]
