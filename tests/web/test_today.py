"""Today, the back office's home: each list shows what waits for a person on hand-built rows
(formal notices awaiting approval, disputes whose last word is the debtor's, promises broken
lately, e-mails refused for good, calls due, bank suggestions), the most at stake first then the
oldest, never another creditor's; the menu's counts; the empty page; the debtors list moved to
/app/debtors. Through the test client with a signed-in user, on both engines."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, time, timedelta, timezone

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import (BankStatement, BankTransaction, CreditorUser, Debtor, Dispute, DisputeMessage, Invoice,
                           OutboxMessage, PaymentPromise, Reminder, Task)
from support import Api, assert_clean, back_office_login, put_ledger, response_text


def _ids(creditor_id):
    debtors = dict(db.session.execute(select(Debtor.ref, Debtor.id).where(Debtor.creditor_id == creditor_id)).all())
    invoices = {n: (i, d) for n, i, d in db.session.execute(
        select(Invoice.number, Invoice.id, Invoice.debtor_id).where(Invoice.creditor_id == creditor_id)).all()}
    return debtors, invoices


def _at(day, hour=10):
    return datetime.combine(day, time(hour), timezone.utc)


def build(creditor_id, today, prefix=""):
    """One row of work per list and per invoice; `prefix` keeps a second creditor's numbers apart.
    Invoices: A1 1 200 €, A2 300 €, B1 5 000 € (debtor B), C1 300 € due earlier than A2."""
    debtors, invoices = _ids(creditor_id)
    user_id = db.session.scalar(select(CreditorUser.id).where(CreditorUser.creditor_id == creditor_id))
    for number in ("A1", "A2", "B1", "C1"):
        inv_id, debtor_id = invoices[prefix + number]
        # a formal notice for every debtor (one per debtor on the page), waiting since due + 30
        db.session.add(Reminder(creditor_id=creditor_id, debtor_id=debtor_id, invoice_id=inv_id,
                                step_code="formal_notice", position=5, dunning_date=today - timedelta(days=2),
                                status="awaiting_approval"))
    # a postponed notice waits for its day: not today's work
    db.session.execute(Reminder.__table__.update().where(Reminder.invoice_id == invoices[prefix + "C1"][0])
                       .values(postponed_to=today + timedelta(days=3)))
    for number, author, days in (("A1", "debtor", 5), ("B1", "debtor", 1), ("A2", "creditor", 9)):
        inv_id, debtor_id = invoices[prefix + number]
        d = Dispute(creditor_id=creditor_id, debtor_id=debtor_id, invoice_id=inv_id, reason="wrong_amount",
                    status="open", opened_at=_at(today - timedelta(days=days)))
        db.session.add(d)
        db.session.flush()
        db.session.add(DisputeMessage(dispute_id=d.id, author="debtor", author_name="x", body="Le montant est faux",
                                      created_at=_at(today - timedelta(days=days))))
        if author == "creditor":  # answered: waiting for the debtor now
            db.session.add(DisputeMessage(dispute_id=d.id, author="creditor", author_name="y", body="Voici l'avoir",
                                          created_at=_at(today - timedelta(days=days - 1))))
    for number, days in (("A2", 3), ("C1", 10), ("B1", 60)):  # B1's is old news
        inv_id, debtor_id = invoices[prefix + number]
        db.session.add(PaymentPromise(creditor_id=creditor_id, debtor_id=debtor_id, invoice_id=inv_id,
                                      promised_date=today - timedelta(days=days), status="broken"))
    for number, amount, days in (("A1", 120000, 4), ("B1", 500000, 2)):
        inv_id, debtor_id = invoices[prefix + number]
        m = OutboxMessage(creditor_id=creditor_id, debtor_id=debtor_id, kind="reminder", channel="email",
                          to_addr=f"{prefix.lower()}{number.lower()}@bounce.test", subject="Relance", text_body="t",
                          html_body="h", message_id_header=f"<{uuid.uuid4().hex}@t>", status="failed", attempts=1,
                          amount=amount, currency="EUR", next_attempt_at=_at(today - timedelta(days=days)),
                          last_error="550 5.1.1 mailbox unavailable")
        db.session.add(m)
        db.session.flush()
        db.session.add(Reminder(creditor_id=creditor_id, debtor_id=debtor_id, invoice_id=inv_id, step_code="reminder_1",
                                position=2, dunning_date=today - timedelta(days=days), status="failed", message_id=m.id))
    for ref, days, assigned in (("D1", 1, None), ("D2", 0, user_id), ("D3", -1, None)):  # D3's is for tomorrow
        db.session.add(Task(creditor_id=creditor_id, debtor_id=debtors[prefix + ref], kind="call", step_code="call",
                            due=today - timedelta(days=days), status="open", assigned_to_id=assigned))
    statement = BankStatement(creditor_id=creditor_id, format="camt053", imported_by="t")
    db.session.add(statement)
    db.session.flush()
    for identity, amount, days, payer, status in (("t1", 30000, 1, "PAYER ONE", "suggested"),
                                                  ("t2", 30000, 4, "PAYER TWO", "suggested"),
                                                  ("t3", 99000, 0, "PAYER THREE", "unmatched")):
        db.session.add(BankTransaction(creditor_id=creditor_id, statement_id=statement.id, account="FR76",
                                       identity=prefix + identity, booking_date=today - timedelta(days=days),
                                       amount=amount, currency="EUR", counterparty=payer, status=status,
                                       reason="exact_amount", score=70, debtor_id=debtors[prefix + "D1"]))
    db.session.commit()


def ledger(api, today, prefix=""):
    put_ledger(api, [(prefix + "A1", prefix + "D1", today - timedelta(days=40), "1200.00"),
                     (prefix + "A2", prefix + "D1", today - timedelta(days=35), "300.00"),
                     (prefix + "B1", prefix + "D2", today - timedelta(days=40), "5000.00"),
                     (prefix + "C1", prefix + "D3", today - timedelta(days=50), "300.00")],
               debtors=((prefix + "D1", f"{prefix}Alpha SARL", "fr"), (prefix + "D2", f"{prefix}Beta Ltd", "en"),
                        (prefix + "D3", f"{prefix}Gamma SA", "fr")))


@pytest.fixture
def work(api, app, creditor, today, new_creditor, client):
    ledger(api, today)
    build(creditor.id, today)
    other = new_creditor("Other Co")
    ledger(Api(client, other), today, prefix="Z")
    build(other.id, today, prefix="Z")
    return today


@pytest.fixture
def bo(client, creditor):
    return back_office_login(client, creditor)


def section(html: str, name: str) -> str:
    found = re.search(rf'<section class="card today" id="{name}".*?</section>', html, re.S)
    assert found, name
    return found.group(0)


def rows(html: str, name: str) -> list[str]:
    """The debtor names of a list's rows, in order."""
    return re.findall(r'<tr><th scope="row"[^>]*><a href="/app/debtors/[^"]+">([^<]+)</a>', section(html, name))


def badge(html: str, name: str) -> int:
    return int(re.search(r'<span class="badge[^"]*">(\d+)</span></h2>', section(html, name)).group(1))


def test_each_list_shows_its_work_most_at_stake_first_then_oldest(bo, work):
    r = bo.get("/app/")
    assert r.status_code == 200
    assert_clean(r, "/app/")
    html = r.get_data(as_text=True)
    # Notices: B owes 5 000, A 1 500 (two invoices), C's is postponed.
    assert rows(html, "approvals") == ["Beta Ltd", "Alpha SARL"]
    assert 'href="/app/approvals#approval-' in section(html, "approvals")
    assert "A1 et 1 autre facture" in response_text(bo.get("/app/"))  # Alpha's notice names A1 and A2
    # Disputes: B1 (5 000) then A1 (1 200); A2's was answered by us.
    assert rows(html, "disputes") == ["Beta Ltd", "Alpha SARL"]
    assert "A2" not in section(html, "disputes")
    # Promises: A2 and C1 both 300 €: the oldest promised date (C1, 10 days ago) first; B1's too old.
    assert rows(html, "promises") == ["Gamma SA", "Alpha SARL"]
    assert re.search(r"C1.*A2", section(html, "promises"), re.S)
    # Refused e-mails: 5 000 € then 1 200 €, with the server's answer.
    bounces = section(html, "bounces")
    assert rows(html, "bounces") == ["Beta Ltd", "Alpha SARL"]
    assert "b1@bounce.test" in bounces and "550 5.1.1 mailbox unavailable" in bounces
    # Calls due today or earlier; the signed-in user's own first (Beta), then by amount.
    assert rows(html, "calls") == ["Beta Ltd", "Alpha SARL"]
    assert "Gamma SA" not in section(html, "calls")
    # Bank: two suggestions of 300 €, the older booking first; the unmatched line is not a suggestion.
    bank = response_text(bo.get("/app/"))
    assert re.search(r"PAYER TWO.*PAYER ONE", section(bank, "bank"), re.S)
    assert "PAYER THREE" not in section(bank, "bank")
    assert [badge(html, n) for n in ("approvals", "disputes", "promises", "bounces", "calls", "bank")] == [2, 2, 2, 2, 2, 2]
    # Another creditor's rows never show.
    assert "ZAlpha" not in html and "ZBeta" not in html and "za1@bounce.test" not in html


def test_amounts_and_days_in_the_creditors_language(bo, work):
    page = response_text(bo.get("/app/"))  # the test creditor writes French
    assert "5\u202f000,00\u00a0€" in section(page, "approvals") or "5 000,00 €" in section(page, "approvals")
    assert "Litiges en attente de votre réponse" in page
    assert "Aujourd’hui" in page or "Aujourd'hui" in page


def test_the_menu_counts_everything_to_do_and_each_badge(bo, work):
    page = bo.get("/app/debtors").get_data(as_text=True)
    nav = re.search(r'<nav aria-label="[^"]+">(.*?)</nav>', page, re.S).group(1)

    def count(path):
        found = re.search(rf'<a href="{re.escape(path)}">[^<]*(?:<span class="badge warn"[^>]*>(\d+)</span>)?</a>', nav)
        assert found, path
        return int(found.group(1) or 0)
    assert count("/app/") == 12  # 2 in each of the six lists
    assert count("/app/bank") == 2
    assert count("/app/approvals") == 2
    assert count("/app/disputes") == 3  # every open dispute, answered or not
    assert count("/app/calls") == 3  # every open call, tomorrow's too


def test_a_creditor_with_nothing_to_do_reads_so(bo):
    page = response_text(bo.get("/app/"))
    assert "Rien ne vous attend aujourd’hui." in page or "Rien ne vous attend aujourd'hui." in page
    assert page.count('class="badge"') >= 6 and 'class="badge warn"' not in page
    assert "Aucun litige n’attend votre réponse." in page or "Aucun litige n'attend votre réponse." in page


def test_the_debtors_list_moved_and_sign_in_lands_on_today(client, creditor, api, today):
    put_ledger(api, [("F-1", "D1", today, "10.00")])
    r = client.post("/app/login", data={"email": creditor.email, "password": creditor.password})
    assert r.headers["Location"] == "/app/"
    assert 'id="debtors"' in client.get("/app/debtors").get_data(as_text=True)
    assert "Alpha SARL" in response_text(client.get("/app/debtors?q=Alpha"))
    assert 'id="debtors"' not in client.get("/app/").get_data(as_text=True)


def _statements(client, path):
    """SQL statements the server (the client's own app) runs to answer one GET."""
    from sqlalchemy import event
    seen = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)
    with client.application.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_the_page_and_its_menu_cost_the_same_queries_whatever_the_work(app, bo, api, creditor, today):
    empty = len(_statements(bo, "/app/"))
    ledger(api, today)
    build(creditor.id, today)
    assert empty > 7 and len(_statements(bo, "/app/")) == empty  # one per list and one for every count, not one per row
    # Another page pays one query for all the menu's badges.
    touching = [s for s in _statements(bo, "/app/debtors") if "task" in s or "dispute" in s or "bank_transaction" in s]
    assert len(touching) == 1 and all(t in touching[0] for t in ("task", "dispute", "bank_transaction", "reminder"))
