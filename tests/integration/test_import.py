"""CSV import of debtors and invoices (CONTRACT §3 `import invoices`): upserts, all or nothing,
every bad line reported with its number."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Creditor, Debtor, Event, Invoice, Payment
from portal.services import ledger
from portal.services.imports import import_csv

HEADER = "debtor_ref,debtor_name,debtor_email,invoice_number,issue_date,due_date,amount,currency\n"
GOOD = HEADER + (
    "C1,Dupont SARL,compta@dupont.example,F-100,2026-09-01,2026-10-01,1200.00,EUR\n"
    "C1,Dupont SARL,compta@dupont.example,F-101,2026-09-15,2026-10-15,99.90,EUR\n"
    'C2,"Martin, Fils & Cie",,F-102,2026-10-01,2026-10-31,15000,JPY\n'
)


@pytest.fixture
def cred(app, creditor) -> Creditor:
    return db.session.get(Creditor, creditor.id)


def run(cred, text: str | bytes, **kwargs):
    data = text.encode() if isinstance(text, str) else text
    return import_csv(cred, data, **kwargs)


def snapshot(creditor_id: int) -> dict:
    """Everything an import can write, as plain values."""
    db.session.rollback()
    debtors = {d.ref: (d.name, d.email, d.language) for d in db.session.scalars(
        select(Debtor).where(Debtor.creditor_id == creditor_id))}
    invoices = {i.number: (i.debtor_id, i.issue_date, i.due_date, i.amount, i.currency, i.status, i.amount_paid)
                for i in db.session.scalars(select(Invoice).where(Invoice.creditor_id == creditor_id))}
    events = db.session.scalar(select(func.count()).select_from(Event).where(Event.creditor_id == creditor_id))
    return {"debtors": debtors, "invoices": invoices, "events": events}


def test_good_file_imports_debtors_and_invoices(cred):
    seen = []
    result = run(cred, GOOD, progress=seen.append)
    assert result.errors == []
    assert (result.rows, result.debtors_created, result.invoices_created, result.invoices_updated) == (3, 2, 3, 0)
    assert seen and seen[-1] == 3
    c1 = ledger.get_debtor(cred.id, "C1")
    assert (c1.name, c1.email, c1.language) == ("Dupont SARL", "compta@dupont.example", "fr")
    c2 = ledger.get_debtor(cred.id, "C2")
    assert (c2.name, c2.email) == ("Martin, Fils & Cie", None)
    f100 = ledger.get_invoice(cred.id, "F-100")
    assert (f100.debtor_id, f100.issue_date, f100.due_date, f100.amount, f100.currency, f100.status) == \
        (c1.id, date(2026, 9, 1), date(2026, 10, 1), 120000, "EUR", "open")
    assert ledger.get_invoice(cred.id, "F-101").amount == 9990
    f102 = ledger.get_invoice(cred.id, "F-102")
    assert (f102.debtor_id, f102.amount, f102.currency) == (c2.id, 15000, "JPY")
    done = db.session.scalars(select(Event).where(Event.type == "import.completed")).all()
    assert len(done) == 1 and done[0].data["invoices_created"] == 3


def test_second_run_updates_without_duplicates(cred):
    run(cred, GOOD)
    changed = GOOD.replace("1200.00", "1300.00").replace("Dupont SARL", "Dupont SAS") \
        + "C3,New One,new@example.com,F-103,2026-11-01,2026-12-01,10.00,EUR\n"
    result = run(cred, changed)
    assert result.errors == []
    assert (result.rows, result.debtors_created, result.invoices_created, result.invoices_updated) == (4, 1, 1, 3)
    s = snapshot(cred.id)
    assert sorted(s["invoices"]) == ["F-100", "F-101", "F-102", "F-103"]
    assert sorted(s["debtors"]) == ["C1", "C2", "C3"]
    assert s["invoices"]["F-100"][3] == 130000
    assert s["debtors"]["C1"][0] == "Dupont SAS"
    # The same file a third time changes nothing.
    before = snapshot(cred.id)
    result = run(cred, changed)
    assert (result.debtors_created, result.invoices_created, result.invoices_updated) == (0, 0, 4)
    after = snapshot(cred.id)
    assert after["debtors"] == before["debtors"] and after["invoices"] == before["invoices"]


def test_import_keeps_payments_and_the_language_of_known_debtors(cred, api):
    api.put("/debtors/C1", json={"name": "Dupont SARL", "email": "compta@dupont.example", "language": "en"})
    run(cred, GOOD)
    api.post("/invoices/F-100/payments", json={"amount": "200.00", "date": "2026-10-05", "reference": "V1"})
    result = run(cred, GOOD.replace("1200.00", "1250.00"))
    assert result.errors == []
    f100 = api.get("/invoices/F-100").json
    assert (f100["amount"], f100["amount_paid"], f100["status"]) == ("1250.00", "200.00", "partially_paid")
    assert api.get("/debtors/C1").json["language"] == "en"


def test_any_bad_row_imports_nothing_and_each_is_reported(cred):
    text = HEADER + (
        "C1,Dupont SARL,compta@dupont.example,F-100,2026-09-01,2026-10-01,1200.00,EUR\n"   # 2 good
        "C1,Dupont SARL,compta@dupont.example,F-101,2026-02-30,2026-10-15,99.90,EUR\n"     # 3 bad date
        "C2,Martin,,F-102,2026-10-01,2026-10-31,12.5.0,EUR\n"                             # 4 bad amount
        "C3,Leroy,not-an-email,F-103,2026-10-01,2026-10-31,1.00,EUR\n"                    # 5 bad e-mail
        "C4,Roux,,F 104,2026-10-01,2026-10-31,1.00,EUR\n"                                 # 6 bad number
        "C5,Girard,,F-105,2026-10-01,2026-09-30,1.00,EUR\n"                               # 7 due before issue
        "C6,Lambert,,F-106,2026-10-01,2026-10-31,1.00,ZZZ\n"                              # 8 currency
        "C7,,,F-107,2026-10-01,2026-10-31,1.00,EUR\n"                                     # 9 no name
        "C8,Bernard,,F-108,2026-10-01,2026-10-31,\"1,00\",EUR\n"                          # 10 comma decimal
        "C9,Moreau,,F-109,2026-10-01,2026-10-31,-1.00,EUR\n"                              # 11 negative
        "C10,Simon,,F-110,2026-10-01,2026-10-31,1.00,XXX\n"                               # 12 not a currency
        "C1,Dupont SARL,compta@dupont.example,F-111,2026-09-01,2026-10-01,5.00,EUR\n"     # 13 good
    )
    before = snapshot(cred.id)
    result = run(cred, text)
    lines = [(e.line, e.field) for e in result.errors]
    assert lines == [(3, "issue_date"), (4, "amount"), (5, "debtor_email"), (6, "invoice_number"),
                     (7, "due_date"), (8, "currency"), (9, "debtor_name"), (10, "amount"), (11, "amount"),
                     (12, "currency")]
    assert all(str(e).startswith(f"line {e.line}: ") for e in result.errors)
    assert (result.debtors_created, result.invoices_created, result.invoices_updated) == (0, 0, 0)
    assert snapshot(cred.id) == before


def test_unquoted_decimal_comma_is_reported_on_its_line(cred):
    result = run(cred, GOOD.replace("99.90", "99,90"))
    assert [e.line for e in result.errors] == [3]
    assert snapshot(cred.id)["invoices"] == {}


def test_bad_row_in_an_update_leaves_stored_data_alone(cred):
    run(cred, GOOD)
    before = snapshot(cred.id)
    result = run(cred, GOOD.replace("1200.00", "1300.00").replace("99.90", "lots"))
    assert [(e.line, e.field) for e in result.errors] == [(3, "amount")]
    assert snapshot(cred.id) == before


def test_conflict_with_stored_payments_imports_nothing(cred, api):
    run(cred, GOOD)
    api.post("/invoices/F-101/payments", json={"amount": "99.90", "date": "2026-10-05", "reference": "V1"})
    before = snapshot(cred.id)
    text = GOOD.replace("Dupont SARL", "Dupont SAS").replace("99.90", "50.00") \
        + "C9,Brand New,,F-200,2026-10-01,2026-10-31,1.00,EUR\n"
    result = run(cred, text)
    assert [(e.line, e.field) for e in result.errors] == [(3, "amount")]
    assert "paid" in result.errors[0].message
    assert (result.debtors_created, result.invoices_created, result.invoices_updated) == (0, 0, 0)
    assert snapshot(cred.id) == before  # not even the renamed or the new debtor


def test_missing_columns(cred):
    result = run(cred, "debtor_ref,debtor_name,invoice_number,issue_date,amount\nC1,X,F-1,2026-01-01,1.00\n")
    assert len(result.errors) == 1
    err = result.errors[0]
    assert err.line == 1
    for column in ("debtor_email", "due_date", "currency"):
        assert column in err.message
    assert "debtor_name" not in err.message
    assert snapshot(cred.id)["invoices"] == {}


@pytest.mark.parametrize("data", [b"", b"\n\n", b"just some text\n"])
def test_empty_or_headerless_file(cred, data):
    result = run(cred, data)
    assert [e.line for e in result.errors] == [1]
    assert "missing columns" in result.errors[0].message
    assert snapshot(cred.id)["invoices"] == {}


def test_non_utf8_file(cred):
    data = GOOD.replace("Dupont SARL", "Société Générale").encode("latin-1")
    result = run(cred, data)
    assert len(result.errors) == 1 and "UTF-8" in result.errors[0].message
    assert snapshot(cred.id)["debtors"] == {}


def test_utf16_file_is_refused(cred):
    result = run(cred, GOOD.encode("utf-16"))
    assert result.errors and result.errors[0].line == 1
    assert snapshot(cred.id)["invoices"] == {}


def test_duplicate_invoice_numbers_in_the_file(cred):
    text = GOOD + "C2,\"Martin, Fils & Cie\",,F-100,2026-10-01,2026-10-31,1.00,EUR\n"
    result = run(cred, text)
    assert [(e.line, e.field) for e in result.errors] == [(5, "invoice_number")]
    assert "line 2" in result.errors[0].message
    assert snapshot(cred.id)["invoices"] == {}


def test_one_debtor_with_two_names_in_the_file(cred):
    text = GOOD + "C1,Someone Else,compta@dupont.example,F-103,2026-10-01,2026-10-31,1.00,EUR\n"
    result = run(cred, text)
    assert [(e.line, e.field) for e in result.errors] == [(5, "debtor_ref")]
    assert snapshot(cred.id)["debtors"] == {}


def test_semicolon_delimited_file(cred):
    text = GOOD.replace(",", ";").replace('"Martin; Fils & Cie"', '"Martin, Fils & Cie"')
    result = run(cred, text)
    assert result.errors == []
    assert result.invoices_created == 3
    assert ledger.get_debtor(cred.id, "C2").name == "Martin, Fils & Cie"
    assert ledger.get_invoice(cred.id, "F-101").amount == 9990


def test_bom_crlf_and_header_case(cred):
    text = HEADER.upper().replace("DEBTOR_REF", " Debtor_Ref ") + GOOD.split("\n", 1)[1]
    data = b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()
    result = run(cred, data)
    assert result.errors == []
    assert result.invoices_created == 3
    assert ledger.get_debtor(cred.id, "C1").name == "Dupont SARL"
    assert sorted(snapshot(cred.id)["invoices"]) == ["F-100", "F-101", "F-102"]


def test_blank_lines_are_skipped_and_line_numbers_stay_true(cred):
    rows = GOOD.split("\n", 1)[1].splitlines()
    text = HEADER + "\n" + rows[0] + "\n,,,,,,,\n\n" + rows[1].replace("99.90", "x") + "\n"
    result = run(cred, text)
    assert [(e.line, e.field) for e in result.errors] == [(6, "amount")]
    result = run(cred, text.replace(",x,", ",99.90,"))
    assert result.errors == [] and result.invoices_created == 2


def test_multiline_quoted_field_reports_the_right_line(cred):
    text = HEADER + 'C1,"Dupont\nSARL",,F-1,2026-09-01,2026-10-01,1.00,EUR\nC2,X,,F-2,2026-13-01,2026-10-01,1.00,EUR\n'
    result = run(cred, text)
    assert [(e.line, e.field) for e in result.errors] == [(4, "issue_date")]


def test_unstorable_characters_are_bad_rows_not_a_crash(cred):
    text = HEADER + "C1,Du\x00pont,,F-1,2026-09-01,2026-10-01,1.00,EUR\nC2,Ok,,F-2,2026-09-01,2026-10-01,1.00,EUR\n"
    result = run(cred, text)
    assert [(e.line, e.field) for e in result.errors] == [(2, "debtor_name")]
    assert snapshot(cred.id)["debtors"] == {}


def test_a_huge_field_is_a_bad_file_not_a_crash(cred):
    text = HEADER + "C1," + "x" * 200_000 + ",,F-1,2026-09-01,2026-10-01,1.00,EUR\n"
    result = run(cred, text)
    assert result.errors and result.errors[0].line == 2
    assert snapshot(cred.id)["debtors"] == {}


def test_import_never_touches_another_creditor(cred, new_creditor):
    other = db.session.get(Creditor, new_creditor("Other").id)
    run(other, GOOD)
    before = snapshot(other.id)
    result = run(cred, GOOD.replace("1200.00", "1.00"))
    assert result.errors == [] and result.invoices_created == 3 and result.debtors_created == 2
    assert snapshot(other.id) == before
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 6
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 0


# --- the same file gives the same results, errors and events on both engines ---------------------
# (SQLite writes row by row through the API's services, PostgreSQL set-based: imports_pg)

def event_log(creditor_id: int) -> list[tuple]:
    """The creditor's events, oldest first, as the API's feed names them."""
    db.session.rollback()
    rows = db.session.execute(
        select(Event.type, Debtor.ref, Invoice.number, Event.data).outerjoin(Debtor, Debtor.id == Event.debtor_id)
        .outerjoin(Invoice, Invoice.id == Event.invoice_id).where(Event.creditor_id == creditor_id).order_by(Event.id))
    return [(t, ref, number, data) for t, ref, number, data in rows]


def test_events_are_those_the_api_writes(cred):
    before = len(event_log(cred.id))
    run(cred, GOOD)
    assert event_log(cred.id)[before:] == [
        ("debtor.created", "C1", None, {}), ("debtor.created", "C2", None, {}),
        ("invoice.created", "C1", "F-100", {"amount": 120000, "currency": "EUR", "due_date": "2026-10-01"}),
        ("invoice.created", "C1", "F-101", {"amount": 9990, "currency": "EUR", "due_date": "2026-10-15"}),
        ("invoice.created", "C2", "F-102", {"amount": 15000, "currency": "JPY", "due_date": "2026-10-31"}),
        ("import.completed", None, None, {"rows": 3, "invoices_created": 3, "invoices_updated": 0})]
    changed = HEADER + (
        "C3,New One,new@example.com,F-103,2026-11-01,2026-12-01,10.00,EUR\n"
        "C1,Dupont SAS,compta@dupont.example,F-100,2026-09-01,2026-10-05,1300.00,EUR\n"
        "C1,Dupont SAS,compta@dupont.example,F-101,2026-09-15,2026-10-15,99.90,EUR\n"
        "C1,Dupont SAS,compta@dupont.example,F-102,2026-10-01,2026-10-31,150.00,EUR\n")
    before = len(event_log(cred.id))
    result = run(cred, changed)
    assert (result.errors, result.debtors_created, result.invoices_created, result.invoices_updated) == ([], 1, 1, 3)
    assert event_log(cred.id)[before:] == [
        ("debtor.created", "C3", None, {}), ("debtor.updated", "C1", None, {"fields": ["name"]}),
        ("invoice.created", "C3", "F-103", {"amount": 1000, "currency": "EUR", "due_date": "2026-12-01"}),
        ("invoice.updated", "C1", "F-100", {"fields": ["amount", "due_date"]}),
        ("invoice.updated", "C1", "F-102", {"fields": ["currency", "debtor_id"]}),  # 150.00 EUR: 15000 too
        ("import.completed", None, None, {"rows": 4, "invoices_created": 1, "invoices_updated": 3})]
    f102 = ledger.get_invoice(cred.id, "F-102")
    assert (f102.debtor.ref, f102.amount, f102.currency, f102.status) == ("C1", 15000, "EUR", "open")


OPTIONAL = ("debtor_address,debtor_ref,debtor_name,debtor_email,invoice_number,issue_date,due_date,amount,currency,"
            "debtor_language,debtor_phone\n")


def test_optional_debtor_columns(cred):
    text = OPTIONAL + (
        '"12 rue des Lilas\n69003 Lyon",C1,Dupont SARL,,F-1,2026-09-01,2026-10-01,1.00,EUR,en,+33612345678\n'
        '"12 rue des Lilas\n69003 Lyon",C1,Dupont SARL,,F-2,2026-09-01,2026-10-01,2.00,EUR,en,+33612345678\n'
        ",C2,Martin,,F-3,2026-09-01,2026-10-01,3.00,EUR,,\n")
    result = run(cred, text)
    assert (result.errors, result.rows, result.debtors_created) == ([], 3, 2)
    c1, c2 = ledger.get_debtor(cred.id, "C1"), ledger.get_debtor(cred.id, "C2")
    assert (c1.language, c1.phone, c1.address) == ("en", "+33612345678", "12 rue des Lilas\n69003 Lyon")
    assert (c2.language, c2.phone, c2.address) == ("fr", None, None)  # the creditor's language
    # A file without these columns, or with empty cells, keeps what each debtor has.
    before = len(event_log(cred.id))
    assert run(cred, GOOD.replace("compta@dupont.example", "")).errors == []
    c1 = ledger.get_debtor(cred.id, "C1")
    assert (c1.name, c1.language, c1.phone, c1.address) == ("Dupont SARL", "en", "+33612345678",
                                                            "12 rue des Lilas\n69003 Lyon")
    assert [e for e in event_log(cred.id)[before:] if e[0].startswith("debtor.")] == [
        ("debtor.updated", "C2", None, {"fields": ["name"]})]  # "Martin, Fils & Cie"
    before = len(event_log(cred.id))
    moved = OPTIONAL + '"3 place Bellecour\r\n69002  Lyon",C1,Dupont SARL,,F-1,2026-09-01,2026-10-01,1.00,EUR,fr,\n'
    assert run(cred, moved).errors == []
    c1 = ledger.get_debtor(cred.id, "C1")
    assert (c1.language, c1.phone, c1.address) == ("fr", "+33612345678", "3 place Bellecour\n69002 Lyon")
    assert [e for e in event_log(cred.id)[before:] if e[0].startswith("debtor.")] == [
        ("debtor.updated", "C1", None, {"fields": ["address", "language"]})]


def test_optional_columns_are_checked_as_the_api_checks_them(cred, api):
    seven = "\n".join(f"line {n}" for n in range(1, 8))
    text = OPTIONAL + (
        f',C1,A,,F-1,2026-09-01,2026-10-01,1.00,EUR,de,\n'                      # 2 language
        f',C2,B,,F-2,2026-09-01,2026-10-01,1.00,EUR,,{"1" * 41}\n'              # 3 phone
        f'"{seven}",C3,C,,F-3,2026-09-01,2026-10-01,1.00,EUR,,\n'               # 4-10 address
        f'"{"x" * 39}",C4,D,,F-4,2026-09-01,2026-10-01,1.00,EUR,,\n'            # 11 address line
        f',C5,E,,F-5,2026-09-01,2026-10-01,1.00,EUR,EN,\n'                      # 12 language
        f'"ok",C6,F,,F-6,2026-13-01,2026-10-01,1.00,EUR,en,+33612345678\n')    # 13 date
    result = run(cred, text)
    assert [(e.line, e.field) for e in result.errors] == [
        (2, "debtor_language"), (3, "debtor_phone"), (10, "debtor_address"), (11, "debtor_address"),
        (12, "debtor_language"), (13, "issue_date")]
    assert snapshot(cred.id)["debtors"] == {}
    # The same messages as PUT /debtors gives for the same values.
    for error, field, value in zip(result.errors, ("language", "phone", "address", "address"),
                                   ("de", "1" * 41, seven, "x" * 39)):
        answer = api.put("/debtors/X", json={"name": "X", "language": "fr", field: value}).json["error"]
        assert (answer["field"], answer["message"].replace(field, "debtor_" + field)) == \
            (field, error.message), field


def test_one_debtor_described_two_ways_by_the_optional_columns(cred):
    text = OPTIONAL + (",C1,A,,F-1,2026-09-01,2026-10-01,1.00,EUR,en,\n"
                       ",C1,A,,F-2,2026-09-01,2026-10-01,1.00,EUR,fr,\n")
    assert [(e.line, e.field) for e in run(cred, text).errors] == [(3, "debtor_ref")]


def test_paid_invoice_rules_as_the_api_applies_them(cred, api):
    run(cred, GOOD)
    api.post("/invoices/F-100/payments", json={"amount": "200.00", "date": "2026-10-05", "reference": "V1"})
    api.post("/invoices/F-101/payments", json={"amount": "10.00", "date": "2026-10-05", "reference": "V2"})
    before = snapshot(cred.id)
    for old, new, line, field in (("C1,Dupont SARL,compta@dupont.example,F-101", "C2,\"Martin, Fils & Cie\",,F-101",
                                   3, "debtor_ref"),
                                  ("1200.00,EUR", "1200,JPY", 2, "currency"),
                                  ("99.90", "9.00", 3, "amount")):
        result = run(cred, GOOD.replace(old, new).replace("1200.00", "1300.00"))
        assert [(e.line, e.field) for e in result.errors] == [(line, field)]
        number = "F-100" if line == 2 else "F-101"
        body = {"debtor_ref": "C1", "issue_date": "2026-09-01", "due_date": "2026-10-01", "amount": "1200.00",
                "currency": "EUR", **{"debtor_ref": {"debtor_ref": "C2"}, "currency": {"amount": "1200",
                                      "currency": "JPY"}, "amount": {"amount": "9.00"}}[field]}
        answer = api.put(f"/invoices/{number}", json=body)
        assert answer.status_code == 409 and answer.json["error"]["message"] == result.errors[0].message
        assert snapshot(cred.id) == before


def test_status_follows_the_new_amount_and_cancelled_stays(cred, api):
    run(cred, GOOD)
    api.post("/invoices/F-101/payments", json={"amount": "50.00", "date": "2026-10-05", "reference": "V1"})
    api.put("/invoices/F-100", json={"debtor_ref": "C1", "issue_date": "2026-09-01", "due_date": "2026-10-01",
                                     "amount": "1200.00", "currency": "EUR", "cancelled": True})
    before = len(event_log(cred.id))
    result = run(cred, GOOD.replace("1200.00", "1100.00").replace("99.90", "50.00"))
    assert result.errors == [] and result.invoices_updated == 3
    assert [(e[2], e[3]) for e in event_log(cred.id)[before:] if e[0] == "invoice.updated"] == [
        ("F-100", {"fields": ["amount"]}), ("F-101", {"fields": ["amount", "status"]})]
    s = snapshot(cred.id)["invoices"]
    assert (s["F-100"][3], s["F-100"][5]) == (110000, "cancelled")
    assert s["F-101"][3:] == (5000, "EUR", "paid", 5000)


def test_progress_reaches_the_last_row(cred):
    seen = []
    text = GOOD + "".join(f"C{n},N{n},,F-{n},2026-10-01,2026-10-31,1.00,EUR\n" for n in range(200, 1400))
    assert run(cred, text, progress=seen.append).errors == []
    assert seen == sorted(seen) and seen[-1] == 1203
