"""Bank reconciliation through the services on both engines (CONTRACT §8): statements written from
the camt.053 layout (tests/bank_files.py), stored once, matched through the ledger, and the dunning
run after the import reminding nobody who paid."""
from __future__ import annotations

import io
import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from recon_files import ACCOUNT, Entry, camt053
from dunning_jobs import day as dunning_day
from portal.domain.references import debtor_reference, invoice_reference
from portal.extensions import db
from portal.models import BankStatement, BankTransaction, Creditor, Event, Invoice, OutboxMessage, Payment, Reminder
from portal.services import Conflict, Invalid, NotFound, ledger, reconciliation

NOV = date(2026, 11, 20)


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _ledger(creditor_id: int) -> Creditor:
    creditor = db.session.get(Creditor, creditor_id)
    ledger.upsert_debtor(creditor, "D1", {"name": "Alpha SARL", "email": "alpha@example.com", "language": "fr"})
    ledger.upsert_debtor(creditor, "D2", {"name": "Beta Ltd", "email": "beta@example.com", "language": "en"})
    for number, ref, issue, due, amount in [("FA-1001", "D1", "2026-09-01", "2026-10-01", "1200.00"),
                                            ("FA-1002", "D1", "2026-10-01", "2026-10-31", "300.50"),
                                            ("FA-1003", "D2", "2026-10-15", "2026-11-14", "99.99"),
                                            ("FA-1004", "D2", "2026-11-01", "2026-12-31", "5000.00")]:
        ledger.upsert_invoice(creditor, number, {"debtor_ref": ref, "issue_date": issue, "due_date": due,
                                                 "amount": amount, "currency": "EUR"})
    return creditor


def _import(creditor, entries, name="nov.xml", statement_id="STMT-1"):
    return reconciliation.import_statement(creditor, io.BytesIO(camt053(entries, statement_id)), name, actor="test")


def _inv(number) -> Invoice:
    db.session.expire_all()
    return db.session.scalar(select(Invoice).where(Invoice.number == number))


def _tx(ref) -> BankTransaction:
    return db.session.scalar(select(BankTransaction).where(BankTransaction.identity == f"ref:{ref}"))


def test_import_matches_stores_once_and_reimport_records_nothing(app, creditor):
    c = _ledger(creditor.id)
    f1 = _inv("FA-1001")
    entries = [Entry("1200.00", NOV, "B1", "ALPHA SARL", rf=invoice_reference(f1.id)),
               Entry("300.50", NOV, "B2", "ALPHA SARL", "VIR FACT FA-1002"),
               Entry("42.00", NOV, "B3", "Inconnu", "cadeau"),
               Entry("15.00", NOV, "B4", "Fournisseur", "frais", debit=True)]
    result = _import(c, entries)
    assert result.as_dict() == {"format": "camt.053", "transactions": 4, "new": 4, "duplicates": 0,
                                "matched": 2, "suggested": 0, "unmatched": 1}
    assert _inv("FA-1001").status == "paid" and _inv("FA-1002").status == "paid"
    pay = db.session.scalar(select(Payment).where(Payment.amount == 120000))
    assert (pay.provider, pay.reference, pay.received_on) == ("bank", f"{ACCOUNT}/ref:B1", NOV)
    assert _tx("B1").payment_id == pay.id and _tx("B1").reason == "invoice_reference"
    assert _tx("B2").reason == "invoice_numbers"
    assert (_tx("B3").status, _tx("B4").status, _tx("B4").reason) == ("unmatched", "ignored", "debit")
    assert _tx("B4").amount == -1500
    types = [t for t, in db.session.execute(select(Event.type).order_by(Event.id))]
    assert types.count("payment.received") == 2 and types.count("invoice.paid") == 2
    assert types.count("bank.transaction_matched") == 2 and types[-1] == "bank.statement_imported"

    again = _import(c, entries)
    assert again.as_dict() == {"format": "camt.053", "transactions": 4, "new": 0, "duplicates": 4,
                               "matched": 0, "suggested": 0, "unmatched": 0}
    assert _count(BankTransaction) == 4 and _count(Payment) == 2 and _count(BankStatement) == 2

    # A later statement repeating the last line of this one records only what is new.
    later = _import(c, [entries[2], Entry("99.99", date(2026, 11, 23), "B5", "BETA LTD", "FA-1003")],
                    statement_id="STMT-2")
    assert (later.transactions, later.new, later.duplicates, later.matched) == (2, 1, 1, 1)
    assert _inv("FA-1003").status == "paid"


def test_a_file_that_cannot_be_read_records_nothing(app, creditor):
    c = _ledger(creditor.id)
    good = camt053([Entry("1200.00", NOV, "B1", "ALPHA SARL", "FA-1001"), Entry("300.50", NOV, "B2", "X", "FA-1002")])
    bad = good.replace(b">300.50<", b">3OO,50<", 1)
    assert bad != good
    with pytest.raises(Invalid) as refused:
        reconciliation.import_statement(c, io.BytesIO(bad), "bad.xml", actor="test")
    assert refused.value.code == "unreadable_statement" and refused.value.field
    assert _count(BankTransaction) == 0 and _count(BankStatement) == 0 and _count(Payment) == 0
    assert _inv("FA-1001").status == "open"
    with pytest.raises(Invalid):
        reconciliation.import_statement(c, io.BytesIO(b"this is no bank statement\n"), "x.txt", actor="test")


def test_partial_payment_goes_oldest_first_and_overpayment_stays_as_credit(app, creditor):
    c = _ledger(creditor.id)
    d1 = ledger.get_debtor(c.id, "D1")
    _import(c, [Entry("1000.00", NOV, "B1", "ALPHA", f"virement {debtor_reference(d1.id)}")])
    assert (_inv("FA-1001").amount_paid, _inv("FA-1002").amount_paid) == (100000, 0)
    d2 = ledger.get_debtor(c.id, "D2")
    _import(c, [Entry("5200.00", NOV, "B2", "BETA", rf=debtor_reference(d2.id))], statement_id="S2")
    assert _inv("FA-1003").status == "paid" and _inv("FA-1004").status == "paid"
    assert ledger.debtor_credit(d2.id) == {"EUR": 5200_00 - 99_99 - 5000_00}


def test_debtor_reference_pays_what_its_last_message_asked(app, creditor):
    c = db.session.get(Creditor, creditor.id)
    ledger.upsert_debtor(c, "D1", {"name": "Alpha SARL", "email": "alpha@example.com", "language": "fr"})
    ledger.upsert_invoice(c, "FA-2001", {"debtor_ref": "D1", "issue_date": "2026-09-01", "due_date": "2026-10-01",
                                     "amount": "100.00", "currency": "EUR"})
    dunning_day.run(date(2026, 10, 2))  # the first reminder asks for FA-2001
    assert _count(OutboxMessage, OutboxMessage.kind == "reminder") == 1
    # An older invoice of the same amount, loaded after the message: oldest first would pay it.
    ledger.upsert_invoice(c, "FA-2000", {"debtor_ref": "D1", "issue_date": "2026-08-01", "due_date": "2026-09-01",
                                     "amount": "100.00", "currency": "EUR"})
    d1 = ledger.get_debtor(c.id, "D1")
    result = _import(c, [Entry("100.00", date(2026, 10, 5), "B1", "ALPHA", f"REF {debtor_reference(d1.id)}")])
    assert result.matched == 1
    assert (_inv("FA-2001").status, _inv("FA-2000").status) == ("paid", "open")


def test_transfer_posted_through_the_api_is_linked_not_recorded_again(app, creditor):
    c = _ledger(creditor.id)
    posted, _ = ledger.record_offline_payment(c, "FA-1003", {"amount": "99.99", "date": "2026-11-19",
                                                        "reference": "VIR-99"})
    result = _import(c, [Entry("99.99", NOV, "B1", "BETA LTD", "facture FA-1003")])
    assert result.matched == 1
    tx = _tx("B1")
    assert (tx.status, tx.reason, tx.payment_id) == ("matched", "already_recorded", posted.id)
    assert _count(Payment) == 1 and _inv("FA-1003").amount_paid == 9999
    # Not linked twice: a second line of that amount is matched on its own.
    _import(c, [Entry("99.99", NOV, "B2", "BETA LTD", "FA-1004")], statement_id="S2")
    assert _tx("B2").payment_id != posted.id and _count(Payment) == 2


def test_transfer_posted_through_the_api_after_the_statement_is_the_same_payment(app, creditor):
    """The other order: the statement recorded the transfer first; the creditor's accounting then
    posts it through the API. It is the statement's payment (200), replays find it, nothing twice."""
    c = _ledger(creditor.id)
    _import(c, [Entry("99.99", NOV, "B1", "BETA LTD", "facture FA-1003")])
    bank_payment = _tx("B1").payment_id
    body = {"amount": "99.99", "date": "2026-11-23", "reference": "VIR-99"}
    posted, created = ledger.record_offline_payment(c, "FA-1003", body)
    assert (posted.id, created, posted.posted_reference) == (bank_payment, False, "VIR-99")
    again, created = ledger.record_offline_payment(c, "FA-1003", body)
    assert (again.id, created) == (bank_payment, False)
    assert _count(Payment) == 1 and _inv("FA-1003").amount_paid == 9999
    assert _count(Event, Event.type == "payment.reference_posted") == 1
    # The same reference for another amount is refused; another transfer of that amount is new money.
    with pytest.raises(Conflict):
        ledger.record_offline_payment(c, "FA-1003", {**body, "amount": "10.00"})
    other, created = ledger.record_offline_payment(c, "FA-1004", {**body, "reference": "VIR-100"})
    assert created and other.id != bank_payment and _count(Payment) == 2


def test_payouts_are_ignored_and_debits_kept(app, creditor):
    c = _ledger(creditor.id)
    result = _import(c, [Entry("300.50", NOV, "B1", "STRIPE", "STRIPE PAYOUT po_1QabcdEFGHijklmnop"),
                         Entry("80.00", NOV, "B2", "Loyer", "loyer novembre", debit=True)])
    assert (result.new, result.matched, result.suggested, result.unmatched) == (2, 0, 0, 0)
    assert (_tx("B1").status, _tx("B1").reason) == ("ignored", "payout")
    assert _inv("FA-1002").status == "open"
    ignored = reconciliation.list_transactions(c.id, "ignored")
    assert sorted(line.tx.reason for line in ignored) == ["debit", "payout"]
    with pytest.raises(Conflict):
        reconciliation.confirm_match(c, _tx("B1").id, ["FA-1002"], actor="owner")
    with pytest.raises(Conflict):
        reconciliation.confirm_match(c, _tx("B2").id, ["FA-1002"], actor="owner")


def test_suggestion_confirmed_unmatched_matched_by_hand_and_ignored(app, creditor, new_creditor):
    c = _ledger(creditor.id)
    result = _import(c, [Entry("300.50", NOV, "B1", "ALPHA SARL", "paiement"),
                         Entry("50.00", NOV, "B2", "M DUPONT", "divers"),
                         Entry("7.00", NOV, "B3", "M MARTIN", "divers")])
    assert (result.suggested, result.unmatched) == (1, 2)
    s = _tx("B1")
    assert s.status == "suggested" and s.score > 0 and s.reason in ("exact_amount", "payer_name")
    [line] = reconciliation.list_transactions(c.id, "suggested")
    assert line.debtor_ref == "D1" and line.invoices == ["FA-1002"]
    reconciliation.confirm_match(c, s.id, [], actor="owner@test")
    assert _inv("FA-1002").status == "paid" and _tx("B1").reason == "confirmed"
    reconciliation.confirm_match(c, s.id, None, actor="owner@test")  # again: nothing more
    assert _count(Payment) == 1

    u = _tx("B2")
    with pytest.raises(Invalid):
        reconciliation.confirm_match(c, u.id, ["FA-1001", "FA-1003"], actor="owner")  # two debtors
    with pytest.raises(Conflict):
        reconciliation.confirm_match(c, u.id, ["FA-1002"], actor="owner")  # paid already
    with pytest.raises(NotFound):
        reconciliation.confirm_match(c, u.id, ["NOPE-1"], actor="owner")
    other = db.session.get(Creditor, new_creditor("Other").id)
    with pytest.raises(NotFound):
        reconciliation.confirm_match(other, u.id, ["FA-1001"], actor="owner")
    reconciliation.confirm_match(c, u.id, ["FA-1001"], actor="owner")
    assert _inv("FA-1001").amount_paid == 5000 and _tx("B2").status == "matched"
    with pytest.raises(Conflict):
        reconciliation.ignore(c, u.id, actor="owner")

    reconciliation.ignore(c, _tx("B3").id, actor="owner")
    reconciliation.ignore(c, _tx("B3").id, actor="owner")
    assert (_tx("B3").status, _tx("B3").reason) == ("ignored", "manual")
    assert _count(Event, Event.type == "bank.transaction_ignored") == 1
    assert _count(Event, Event.type == "bank.transaction_matched") == 2


def test_transfer_on_the_day_a_reminder_is_due_stops_it_and_brings_the_thank_you(app, creditor):
    c = db.session.get(Creditor, creditor.id)
    ledger.upsert_debtor(c, "D1", {"name": "Alpha SARL", "email": "alpha@example.com", "language": "fr"})
    ledger.upsert_invoice(c, "FA-2001", {"debtor_ref": "D1", "issue_date": "2026-09-01", "due_date": "2026-10-01",
                                     "amount": "100.00", "currency": "EUR"})
    ledger.upsert_invoice(c, "FA-2002", {"debtor_ref": "D1", "issue_date": "2026-09-01", "due_date": "2026-10-01",
                                     "amount": "40.00", "currency": "EUR"})
    due_day = date(2026, 10, 2)  # D+1: the first reminder is due for both
    result = _import(c, [Entry("100.00", due_day, "B1", "ALPHA SARL", "Facture FA-2001")])
    assert result.matched == 1
    dunning_day.run(due_day)
    a1, a2 = _inv("FA-2001"), _inv("FA-2002")
    reminded = {r.invoice_id: r.step_code for r in db.session.scalars(select(Reminder))}
    assert a2.id in reminded and reminded[a2.id] != "thank_you"
    assert reminded.get(a1.id) in (None, "thank_you")
    # One message: it asks for FA-2002 alone and thanks for FA-2001.
    [asking] = db.session.scalars(select(OutboxMessage)).all()
    assert asking.amount == 4000 and "FA-2002" in asking.text_body
    assert "Merci pour votre règlement de la facture FA-2001" in asking.text_body
    assert not db.session.scalar(select(func.count()).select_from(Reminder).where(
        Reminder.invoice_id == a1.id, Reminder.step_code != "thank_you"))
    # The thanks came once.
    dunning_day.run(date(2026, 10, 3))
    assert _count(Reminder, Reminder.invoice_id == a1.id, Reminder.step_code == "thank_you") == 1


def test_two_imports_of_the_same_file_at_once_record_each_line_once(make_app, app, creditor, engine_name):
    if engine_name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: the race is PostgreSQL's")
    _ledger(creditor.id)
    data = camt053([Entry(f"{n}.00", NOV, f"B{n}", "ALPHA SARL", "FA-1001" if n == 7 else "x") for n in range(1, 301)])
    db.session.remove()
    results, errors = [], []
    # A barrier that gives up, and the apps made here: a thread that died before the barrier left the
    # other waiting for ever (a hung CI run).
    start = threading.Barrier(2, timeout=120)
    workers = [make_app() for _ in range(2)]

    def run(worker):
        with worker.app_context():
            try:
                start.wait()
                results.append(reconciliation.import_statement(db.session.get(Creditor, creditor.id), io.BytesIO(data),
                                                               "same.xml", actor="test"))
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)
    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads)
    assert not errors
    assert len(results) == 2 and sum(r.new for r in results) == 300
    assert _count(BankTransaction) == 300 and _count(Payment) == 1
    assert sum(r.matched for r in results) == 1
