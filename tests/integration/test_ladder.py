"""The dunning ladder (DESIGN.md "The ladder"), end to end on both engines: a freshly imported
overdue ledger starts on the first rung; forty days of `dunning run` against a real SMTP server
climb each invoice one rung at a time, max(7, gap) days apart, the formal notice only after two
reminders went out; a step cancelled during a dispute goes again once it is resolved; a step
refused by the server is shown to the creditor and goes again once the debtor's address
changes; charges items are never reminded."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from dunning_jobs import day as dunning_day
from fakes.cli_process import app_env, flask, json_line
from portal.domain.schedule import MIN_GAP_DAYS
from portal.extensions import db
from portal.models import Creditor, Event, Invoice, OutboxMessage, Reminder
from portal.services import disputes, ladder, ledger, reminders
from portal.services.plans import DEFAULT_STEPS, PROFILE_OFFSETS
from support import back_office_login, response_text

DAY0 = date(2026, 6, 1)
HEADER = "debtor_ref,debtor_name,debtor_email,invoice_number,issue_date,due_date,amount,currency\n"
#: days late on DAY0 of the imported invoices (negative: not due yet)
AGES = [3, 5, 9, 14, 20, 31, 45, 60, 90, 120, -2, -5, -20]


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url, "MAIL_FROM": "Atelier Test <relances@atelier.test>"}


def _csv(rows) -> str:
    return HEADER + "".join(
        f"{ref},Client {ref},{email},{number},{(due - timedelta(days=30)).isoformat()},{due.isoformat()},"
        f"{amount},EUR\n" for ref, email, number, due, amount in rows)


def _ledger_rows():
    """Ten debtors (the last without an e-mail: letters), each with a few of AGES."""
    rows = []
    for n in range(10):
        email = f"client{n}@example.com" if n < 9 else ""
        for k, age in enumerate(AGES[n % 4::4]):
            rows.append((f"L{n}", email, f"L{n}-{k}", DAY0 - timedelta(days=age), f"{100 + 10 * n + k}.00"))
    return rows


def test_first_run_on_an_imported_overdue_ledger_sends_first_reminders_only(app, creditor, smtp_server,
                                                                            database_url, tmp_path):
    """`import invoices` then `dunning run`, the real commands: invoices 3 to 120 days late get
    their first reminder, those not due yet a courtesy notice, nobody a formal notice."""
    path = tmp_path / "ledger.csv"
    path.write_text(_csv(_ledger_rows()))
    db.session.remove()
    env = app_env(database_url, smtp_server.url, MAIL_FROM="Atelier Test <relances@atelier.test>")
    json_line(flask("import", "invoices", str(path), "--creditor", creditor.email, env=env))
    result = json_line(flask("dunning", "run", "--date", DAY0.isoformat(), env=env))
    assert result["awaiting_approval"] == 0 and result["failed"] == 0
    rows = db.session.execute(select(Invoice.number, Invoice.due_date, Reminder.step_code, Reminder.rung,
                                     Reminder.status).join(Invoice, Invoice.id == Reminder.invoice_id)).all()
    assert result["planned"] == len(rows)
    late = {number for number, due, *_ in rows if due < DAY0}
    assert {(code, rung) for number, _d, code, rung, _s in rows if number in late} == {("reminder_1", 1)}
    assert {code for number, _d, code, _r, _s in rows if number not in late} == {"courtesy"}
    assert late == {number for _ref, _e, number, due, _a in _ledger_rows() if due < DAY0}
    assert {status for *_, status in rows} == {"sent"}  # letters included: in the print queue
    # Each e-mail: the debtor's one message of the day, no formal notice anywhere.
    received = smtp_server.handler.take()
    assert len(received) == result["sent"] == 9
    assert not any("demeure" in r.subject.lower() or "formal notice" in r.subject.lower() for r in received)
    assert db.session.scalars(select(OutboxMessage.kind).distinct()).all() == ["reminder"]
    # What was sent is the invoices' first rung.
    assert set(db.session.execute(select(Invoice.rung_reached, Invoice.rung_sent_on)
                                  .where(Invoice.number.in_(late)))) == {(1, DAY0)}
    # A courtesy notice sent is rung 0, its day on the invoice: the planner needs no reminder row
    # to know it went.
    courtesy = {number for number, _d, code, _r, _s in rows if code == "courtesy"}
    assert courtesy and set(db.session.execute(select(Invoice.rung_reached, Invoice.rung_sent_on)
                                               .where(Invoice.number.in_(courtesy)))) == {(0, DAY0)}


def test_courtesy_notice_goes_once_then_the_first_rung(app, creditor, smtp_server):
    """In process (the outbox's own record of a send): the courtesy notice goes on its day and is
    recorded on the invoice as rung 0; the days after plan nothing (the invoice row says it
    went, even with its reminder row gone); the first rung follows on its day."""
    owner = db.session.get(Creditor, creditor.id)
    ledger.upsert_debtor(owner, "C", {"name": "C SARL", "email": "c@example.com"})
    inv = _invoice(owner, "C-1", "C", -7)  # the courtesy notice's day (standard plan: 7 days before)
    assert dunning_day.run(DAY0).sent == 1
    db.session.expire_all()
    assert (inv.rung_reached, inv.rung_sent_on) == (0, DAY0)
    assert dunning_day.run(DAY0 + timedelta(days=1)).planned == 0
    db.session.execute(Reminder.__table__.delete())  # the invoice row alone decides
    db.session.commit()
    assert dunning_day.run(DAY0 + timedelta(days=2)).planned == 0
    assert dunning_day.run(DAY0 + timedelta(days=8)).planned == 1  # due yesterday: reminder_1
    db.session.expire_all()
    assert db.session.scalars(select(Reminder.step_code)).all() == ["reminder_1"]
    assert (inv.rung_reached, inv.rung_sent_on) == (1, DAY0 + timedelta(days=8))


def _rung_gaps(profile: str) -> dict[int, int]:
    """Rung k -> the least days between sending rung k - 1 and rung k on the default plan."""
    offsets = [o for o in PROFILE_OFFSETS[profile][1] if o > 0]
    return {k + 1: max(MIN_GAP_DAYS, offsets[k] - offsets[k - 1]) for k in range(1, len(offsets))}


def test_forty_days_climb_one_rung_at_a_time(app, creditor, smtp_server):
    owner = db.session.get(Creditor, creditor.id)
    for ref, email, number, due, amount in _ledger_rows():
        # Without an e-mail, formal notices leave as letters: they need a postal address.
        ledger.upsert_debtor(owner, ref, {"name": f"Client {ref}", "email": email or None,
                                          "address": None if email else f"Client {ref}\n1 rue de la Paix\n75002 PARIS",
                                          "profile": "risky" if ref in ("L2", "L5") else "standard"})
        ledger.upsert_invoice(owner, number, {"debtor_ref": ref, "issue_date": (due - timedelta(days=30)).isoformat(),
                                              "due_date": due.isoformat(), "amount": amount, "currency": "EUR"})
    codes = [code for code, *_ in DEFAULT_STEPS]
    sends: dict[str, list[tuple[date, int, str]]] = defaultdict(list)  # invoice -> (day, rung, step)
    for n in range(40):
        day = DAY0 + timedelta(days=n)
        result = dunning_day.run(day)
        received = smtp_server.handler.take()
        assert result.failed == 0 and result.sent == len(received)
        if n == 0:
            assert result.awaiting_approval == 0
        # Approve the formal notices the day they come: e-mailed by the next run, or put in the
        # print queue at once for the debtor without an e-mail.
        for debtor, _rows in reminders.awaiting(owner.id, day):
            reminders.approve(owner, debtor.id, day, user="owner")
        for number, rung, code in db.session.execute(
                select(Invoice.number, Reminder.rung, Reminder.step_code).join(Invoice, Invoice.id == Reminder.invoice_id)
                .where(Reminder.status == "sent", Reminder.rung.is_not(None))):
            if (rung, code) not in {(r, c) for _d, r, c in sends[number]}:
                sends[number].append((day, rung, code))
    profiles = {ref: ("risky" if ref in ("L2", "L5") else "standard") for ref, *_ in _ledger_rows()}
    climbed_to_the_top = 0
    for ref, _email, number, due, _amount in _ledger_rows():
        history = sends[number]
        gaps = _rung_gaps(profiles[ref])
        assert [rung for _d, rung, _c in history] == list(range(1, len(history) + 1)), (number, history)
        assert [code for _d, _r, code in history] == codes[1:len(history) + 1]
        for (before, _r, _c), (after, rung, _c2) in zip(history, history[1:]):
            assert (after - before).days >= gaps[rung], (number, history)
        if history:  # the first rung on its day, or on DAY0 for an invoice imported late
            assert history[0][0] == max(DAY0, due + timedelta(days=PROFILE_OFFSETS[profiles[ref]][1][1]))
        if any(code == "formal_notice" for _d, _r, code in history):
            climbed_to_the_top += 1
            assert [code for _d, _r, code in history][:2] == ["reminder_1", "reminder_2"]
    assert climbed_to_the_top >= 5  # the data does reach the formal notice, by e-mail and by letter
    invoices = db.session.scalars(select(Invoice)).all()
    assert all(i.rung_reached == len(sends[i.number]) for i in invoices)
    assert all(i.rung_sent_on == (sends[i.number][-1][0] if sends[i.number] else None) for i in invoices
               if i.debtor.ref == "L9")  # letters: the day they entered the print queue


def _invoice(owner, number, ref, age, day=DAY0):
    due = day - timedelta(days=age)
    inv, _ = ledger.upsert_invoice(owner, number, {"debtor_ref": ref, "issue_date": (due - timedelta(days=30)).isoformat(),
                                                   "due_date": due.isoformat(), "amount": "250.00", "currency": "EUR"})
    return inv


def test_step_cancelled_during_a_dispute_goes_again_once_it_is_resolved(app, creditor, smtp_server):
    owner = db.session.get(Creditor, creditor.id)
    ledger.upsert_debtor(owner, "X", {"name": "X SARL", "email": "x@example.com"})
    inv = _invoice(owner, "X-1", "X", 3)
    from dunning_jobs import planner
    assert planner.plan_day(owner, DAY0) == (1, 0)
    # Disputed after planning, before composing: the composer cancels the reminder.
    dispute = disputes.open_dispute(inv.debtor_id, "X-1", reason="not_received", comment="Jamais reçue.")
    assert reminders.compose_day(owner, DAY0) == 0
    reminder = db.session.scalars(select(Reminder)).one()
    assert reminder.status == "cancelled"
    assert dunning_day.run(DAY0 + timedelta(days=1)).planned == 0  # still disputed
    disputes.resolve(owner.id, dispute.id, user="owner", resolution="rejected")
    later = DAY0 + timedelta(days=2)
    assert dunning_day.run(later).planned == 1
    db.session.expire_all()
    again = db.session.scalars(select(Reminder)).one()  # the same row, planned again and sent
    assert (again.id, again.step_code, again.status, again.dunning_date) == (reminder.id, "reminder_1", "sent", later)
    assert (again.invoice.rung_reached, again.invoice.rung_sent_on) == (1, later)
    assert [r.rcpt_tos for r in smtp_server.handler.take() if r.message["X-Relance-Kind"] == "reminder"] == [
        ["x@example.com"]]


def test_refused_step_is_shown_and_goes_again_once_the_address_changes(app, creditor, smtp_server, client):
    owner = db.session.get(Creditor, creditor.id)
    ledger.upsert_debtor(owner, "Y", {"name": "Y SARL", "email": "wrong@example.com"})
    _invoice(owner, "Y-1", "Y", 3)
    smtp_server.handler.refuse = {"wrong@example.com": "550 5.1.1 no such user"}
    result = dunning_day.run(DAY0)
    assert (result.sent, result.failed) == (0, 1)
    reminder = db.session.scalars(select(Reminder)).one()
    assert reminder.status == "failed" and reminder.invoice.rung_reached == 0
    [failed] = ladder.failed_steps(reminder.debtor_id)
    assert failed["invoice"] == "Y-1" and failed["step"] == "reminder_1" and "550" in failed["error"]
    # The creditor sees it on the debtor's page: which step, when, why.
    back_office_login(client, creditor)
    page = response_text(client.get("/app/debtors/Y"))
    assert "Relances en échec" in page and "Premier rappel" in page and "no such user" in page and "Y-1" in page
    # Nothing happens while the address is wrong: the failed step blocks the ladder.
    assert dunning_day.run(DAY0 + timedelta(days=1)).planned == 0
    # The creditor corrects the e-mail (the API's PUT): the step is planned again and goes.
    ledger.upsert_debtor(owner, "Y", {"name": "Y SARL", "email": "right@example.com"})
    db.session.expire_all()
    assert db.session.get(Reminder, reminder.id).status == "planned"
    assert db.session.get(Reminder, reminder.id).message_id is None
    assert "Relance en échec replanifiée : Premier rappel" in response_text(client.get("/app/debtors/Y"))
    assert db.session.scalars(select(Event.data).where(Event.type == "reminder.replanned")).all() == [
        {"step": "reminder_1"}]
    result = dunning_day.run(DAY0 + timedelta(days=2))
    assert (result.planned, result.sent, result.failed) == (0, 1, 0)
    assert [r.rcpt_tos for r in smtp_server.handler.take()] == [["right@example.com"]]
    db.session.expire_all()
    assert db.session.get(Reminder, reminder.id).status == "sent"
    assert ladder.failed_steps(reminder.debtor_id) == []
    assert "no such user" not in response_text(client.get("/app/debtors/Y"))
    # A change of name only leaves failed steps alone (none here), and changes nothing else.
    ledger.upsert_debtor(owner, "Y", {"name": "Y SAS", "email": "right@example.com"})
    assert db.session.scalars(select(Event).where(Event.type == "reminder.replanned")).all().__len__() == 1


def test_charges_items_are_never_reminded(app, creditor):
    owner = db.session.get(Creditor, creditor.id)
    ledger.upsert_debtor(owner, "Z", {"name": "Z SARL", "email": "z@example.com"})
    inv = _invoice(owner, "Z-1", "Z", 20)
    charges = _invoice(owner, "Z-1-FRAIS", "Z", 20)
    charges.kind, charges.charged_invoice_id = "charges", inv.id
    db.session.commit()
    from dunning_jobs import planner
    assert planner.plan_day(owner, DAY0) == (1, 0)
    assert db.session.scalars(select(Reminder.invoice_id)).all() == [inv.id]
    # Paid: a thank-you for the invoice, none for the charges item.
    for item in (inv, charges):
        item.amount_paid, item.status = item.amount, "paid"
    db.session.commit()
    assert planner.plan_day(owner, DAY0 + timedelta(days=1)) == (1, 0)
    assert db.session.scalars(select(Reminder.invoice_id).where(Reminder.step_code == "thank_you")).all() == [inv.id]


def test_an_import_correcting_the_address_sends_the_refused_step_again(app, creditor, smtp_server):
    """As the API's PUT /debtors above, on both engines (the import writes set-based on PostgreSQL)."""
    from portal.services.imports import import_csv

    owner = db.session.get(Creditor, creditor.id)
    due = DAY0 - timedelta(days=3)
    assert import_csv(owner, _csv([("Y", "wrong@example.com", "Y-1", due, "250.00")]).encode()).errors == []
    smtp_server.handler.refuse = {"wrong@example.com": "550 5.1.1 no such user"}
    assert (dunning_day.run(DAY0).failed, db.session.scalars(select(Reminder.status)).all()) == (1, ["failed"])
    # The same file with the name changed only: the failed step stays failed.
    assert import_csv(owner, _csv([("Y", "wrong@example.com", "Y-1", due, "250.00")]).encode()
                      .replace(b"Client Y", b"Client Y SAS")).errors == []
    assert db.session.scalars(select(Reminder.status)).all() == ["failed"]
    assert import_csv(owner, _csv([("Y", "right@example.com", "Y-1", due, "250.00")]).encode()).errors == []
    db.session.expire_all()
    assert db.session.scalars(select(Reminder.status)).all() == ["planned"]
    assert db.session.scalars(select(Event.data).where(Event.type == "reminder.replanned")).all() == [
        {"step": "reminder_1"}]
    assert db.session.scalars(select(Event.data).where(Event.type == "debtor.updated")).all() == [
        {"fields": ["name"]}, {"fields": ["email", "name"]}]
    result = dunning_day.run(DAY0 + timedelta(days=1))
    assert (result.sent, result.failed) == (1, 0)
    assert [r.rcpt_tos for r in smtp_server.handler.take()] == [["right@example.com"]]
