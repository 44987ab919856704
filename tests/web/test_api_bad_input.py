"""Bad input to every API endpoint: a 4xx with {"error": {"code", "message", "field"}}, never a 500,
and nothing written (CONTRACT §4)."""
from __future__ import annotations

import base64
import itertools
import re
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (ApiKey, Creditor, CreditorUser, Debtor, Document, Event, Invoice, Payment,
                           PaymentAllocation, PortalLink)

DROP = object()  # leave the key out of the body
HYPOTHESIS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def state() -> dict:
    """Row counts of every table a request could write to."""
    db.session.rollback()  # a fresh snapshot of what requests committed
    return {m.__name__: db.session.scalar(select(func.count()).select_from(m))
            for m in (Creditor, CreditorUser, ApiKey, Debtor, Invoice, Payment, PaymentAllocation, Document,
                      PortalLink, Event)}


def assert_error(r, status=422, field="unchecked", code=None, context=None):
    assert r.status_code < 500, (context, r.status_code, r.data[:300])
    assert r.status_code == status, (context, r.status_code, r.data[:300])
    assert r.is_json, (context, r.data[:300])
    assert set(r.json) == {"error"}, context
    err = r.json["error"]
    assert set(err) == {"code", "message", "field"}, context
    assert isinstance(err["code"], str) and err["code"], context
    assert isinstance(err["message"], str) and err["message"], context
    assert err["field"] is None or isinstance(err["field"], str), context
    if field != "unchecked":
        assert err["field"] == field, (context, err)
    if code is not None:
        assert err["code"] == code, (context, err)


def with_changes(base: dict, changes: dict) -> dict:
    out = dict(base)
    for k, v in changes.items():
        if v is DROP:
            out.pop(k, None)
        else:
            out[k] = v
    return out


# --- bodies that are not a JSON object ----------------------------------------------------------------

NOT_AN_OBJECT = ["", "{", '{"name": "x"', "[]", '[{"name": "x"}]', "null", '"text"', "42", "true", "NaN",
                 '{"name": "x"} trailing', "{'name': 'x'}", "[" * 100_000 + "]" * 100_000,
                 '{"a":' * 100_000 + "1" + "}" * 100_000]
NOT_AN_OBJECT_BYTES = [b"\xff\xfe{\x00}", b'{"name": "\xe9t\xe9"}']


@pytest.mark.parametrize("method, path", [("put", "/debtors/N1"), ("put", "/invoices/N-1"),
                                          ("post", "/invoices/F-1/payments")])
def test_body_that_is_not_a_json_object(seeded, method, path):
    before = state()
    for raw in NOT_AN_OBJECT + NOT_AN_OBJECT_BYTES:
        for content_type in ("application/json", "text/plain"):
            r = getattr(seeded, method)(path, data=raw, content_type=content_type)
            assert_error(r, 422, field=None, code="malformed_json", context=(raw[:20], content_type))
    assert state() == before


# --- PUT /debtors/{ref} -------------------------------------------------------------------------------

GOOD_DEBTOR = {"name": "New Customer", "email": "new@example.com", "language": "en"}
DEBTOR_CASES = [
    ({"name": DROP}, "name"), ({"name": None}, "name"), ({"name": 42}, "name"), ({"name": ["x"]}, "name"),
    ({"name": {"first": "x"}}, "name"), ({"name": ""}, "name"), ({"name": "   "}, "name"),
    ({"name": "x" * 201}, "name"), ({"name": "A\x00B"}, "name"), ({"name": "A\ud800B"}, "name"),
    ({"name": "bell\x07"}, "name"), ({"name": True}, "name"),
    ({"email": "not-an-email"}, "email"), ({"email": 42}, "email"), ({"email": ["a@example.com"]}, "email"),
    ({"email": "a@b"}, "email"), ({"email": "two@@example.com"}, "email"), ({"email": "a b@example.com"}, "email"),
    ({"email": "a\x00@example.com"}, "email"), ({"email": "\udc80@example.com"}, "email"),
    ({"email": "a@" + "b" * 250 + ".com"}, "email"),
    ({"language": "de"}, "language"), ({"language": None}, "language"), ({"language": ["fr"]}, "language"),
    ({"language": 1}, "language"), ({"language": "FR"}, "language"), ({"language": {"fr": 1}}, "language"),
    ({"profile": "vip"}, "profile"), ({"profile": 3}, "profile"), ({"profile": ["risky"]}, "profile"),
    ({"kind": "alien"}, "kind"), ({"kind": False}, "kind"),
    ({"phone": 33123456789}, "phone"), ({"phone": "1" * 41}, "phone"), ({"phone": "\x00"}, "phone"),
    ({"phone": ""}, "phone"), ({"phone": ["+33"]}, "phone"), ({"phone": "+33 6 12"}, "phone"),
    ({"phone": "not a number"}, "phone"),
]


def test_put_debtor_bad_fields(seeded):
    d1 = seeded.get("/debtors/D1").json
    before = state()
    for changes, field in DEBTOR_CASES:
        for ref in ("N1", "D1"):  # a new debtor and an update
            r = seeded.put(f"/debtors/{ref}", json=with_changes(GOOD_DEBTOR, changes))
            assert_error(r, 422, field=field, code="invalid", context=(ref, changes))
    assert state() == before
    assert seeded.get("/debtors/D1").json == d1
    assert seeded.get("/debtors/N1").status_code == 404


def test_a_10_mb_name_is_refused_cleanly(seeded):
    before = state()
    r = seeded.put("/debtors/N1", json={"name": "x" * 10_000_000})
    assert_error(r, 422, field="name")
    assert len(r.data) < 1000  # the answer does not echo the input
    assert state() == before


def test_a_body_over_the_size_limit_is_413(seeded):
    before = state()
    r = seeded.put("/debtors/N1", data=b'{"name": "' + b"x" * (17 * 1024 * 1024) + b'"}',
                   content_type="application/json")
    assert_error(r, 413, field=None, code="too_large")
    assert state() == before


BAD_REFS = ["has space", "../x", "./x", "-dash", ".dot", "_under", "x" * 65, "é", "a\x00b", "a;b",
            "a\\b", "a?b", "a%b", "a\tb", "a\nb", "F-1\n", "\u202eevil"]


@pytest.mark.parametrize("kind", ["debtors", "invoices"])
def test_put_with_bad_reference_in_path(seeded, kind):
    body = GOOD_DEBTOR if kind == "debtors" else {"debtor_ref": "D1", "issue_date": "2026-09-01",
                                                  "due_date": "2026-10-01", "amount": "1.00", "currency": "EUR"}
    before = state()
    for ref in BAD_REFS + [""]:
        r = seeded.put(f"/{kind}/" + quote(ref, safe="/"), json=body)
        # 422 from the check, or 404/405 when no route takes such a path at all.
        assert_error(r, r.status_code if r.status_code in (404, 405) else 422, context=ref)
    assert state() == before
    assert seeded.put(f"/{kind}/" + "x" * 64, json=body).status_code == 201  # the longest allowed


def test_get_and_post_with_bad_reference_in_path_are_404(seeded):
    before = state()
    for ref in BAD_REFS:
        path = quote(ref, safe="/")
        for method, url in [("get", f"/debtors/{path}"), ("get", f"/invoices/{path}"),
                            ("post", f"/debtors/{path}/links")]:
            r = getattr(seeded, method)(url)
            assert_error(r, 404, context=(method, url))
        r = seeded.post(f"/invoices/{path}/payments", json={"amount": "1.00", "date": "2026-10-01",
                                                            "reference": "R"})
        assert r.status_code in (404, 422), (ref, r.status_code)
        assert_error(r, r.status_code, context=ref)
    assert state() == before


# --- PUT /invoices/{number} ---------------------------------------------------------------------------

GOOD_INVOICE = {"debtor_ref": "D1", "issue_date": "2026-09-01", "due_date": "2026-10-01", "amount": "1200.00",
                "currency": "EUR"}
BAD_DATES = ["2026-02-30", "2026/01/01", "", " ", None, 20260101, "2026-1-1", "01-01-2026", "2026-09-01T00:00:00",
             "2026-09-01Z", "1900-01-01", "2200-01-01", "0000-01-01", "2026-13-01", "٢٠٢٦-٠٩-٠١", "２０２６-０９-０１",
             "20260901", "2026-W36-1", ["2026-09-01"], {"date": "2026-09-01"}, True, "2026-09-01\n", DROP]
BAD_AMOUNTS = [1200.5, 1200, 0, -1, True, None, "", " ", "1200,50", "-5.00", "0", "0.00", "1.001", "1e3",
               "10000000000.01", "99999999999999999999", "١٢٣", "+5", "0x10", "NaN", "Infinity", "1_000", ".5",
               "5.", "01.00", "1 200.00", "12.34.56", "1200.00 EUR", "€12", ["12.00"], {"value": "12.00"},
               "1." + "0" * 1000 + "1", "9" * 10_000, DROP]
BAD_CURRENCIES = ["ZZZ", "eur1", "XXX", "XTS", "XAU", "FRF", "", None, 978, "EU", "EURO", ["EUR"], "E U", " EUR",
                  "€", True, DROP]
NOT_A_PDF = base64.b64encode(b"hello, world").decode()
INVOICE_CASES = (
    [({"debtor_ref": v}, "debtor_ref") for v in (None, 42, ["D1"], "", "D 1", "NOBODY", "D1\n", "d1", DROP)]
    + [({"issue_date": v}, "issue_date") for v in BAD_DATES]
    + [({"due_date": v}, "due_date") for v in BAD_DATES]
    + [({"due_date": "2026-08-31"}, "due_date")]  # before the issue date
    + [({"amount": v}, "amount") for v in BAD_AMOUNTS]
    + [({"currency": v}, "currency") for v in BAD_CURRENCIES]
    + [({"currency": "JPY", "amount": "100.5"}, "amount"), ({"currency": "BHD", "amount": "1.0001"}, "amount"),
       ({"currency": "EUR", "amount": "0.001"}, "amount")]
    + [({"pdf_base64": v}, "pdf_base64") for v in ("not base64!!", NOT_A_PDF, 42, "", "%PDF-1.4", ["JVBERi0="],
                                                   "JVBERi0xLjQ", "JVBERi0xLjQ=\x00", "A" * 10_000_000,
                                                   base64.b64encode(b"%PDF-1.4" + b"\0" * (10 * 2**20)).decode())]
    + [({"cancelled": v}, "cancelled") for v in ("yes", 1, "true", [])]
)


def test_put_invoice_bad_fields(seeded):
    f1 = seeded.get("/invoices/F-1").json
    before = state()
    for changes, field in INVOICE_CASES:
        for number in ("N-1", "F-1"):
            r = seeded.put(f"/invoices/{number}", json=with_changes(GOOD_INVOICE, changes))
            context = (number, {k: (v[:30] if isinstance(v, str) else v) for k, v in changes.items()})
            assert_error(r, 422, field=field, code="invalid", context=context)
    assert state() == before
    assert seeded.get("/invoices/F-1").json == f1
    assert seeded.get("/invoices/N-1").status_code == 404


def test_refused_update_of_a_paid_invoice_keeps_its_pdf_and_data(seeded):
    seeded.post("/invoices/F-1/payments", json={"amount": "600.00", "date": "2026-10-01", "reference": "V1"})
    f1 = seeded.get("/invoices/F-1").json
    before = state()
    pdf = base64.b64encode(b"%PDF-1.4 new").decode()
    r = seeded.put("/invoices/F-1", json={**GOOD_INVOICE, "amount": "599.99", "pdf_base64": pdf})
    assert_error(r, 409, field="amount", code="conflict")
    assert state() == before  # no document, no event
    assert seeded.get("/invoices/F-1").json == f1


# --- POST /invoices/{number}/payments -----------------------------------------------------------------

GOOD_PAYMENT = {"amount": "100.00", "date": "2026-10-15", "reference": "VIR-1"}
PAYMENT_CASES = (
    [({"amount": v}, "amount") for v in BAD_AMOUNTS]
    + [({"date": v}, "date") for v in BAD_DATES + [(date.today() + timedelta(days=30)).isoformat(), "2199-12-31"]]
    + [({"reference": v}, "reference") for v in (DROP, None, "", "   ", 42, ["R"], {"r": 1}, "R" * 256, "R\x00",
                                                 "R\ud800", "R" * 10_000_000)]
)


def test_post_payment_bad_fields(seeded):
    f1 = seeded.get("/invoices/F-1").json
    before = state()
    for changes, field in PAYMENT_CASES:
        r = seeded.post("/invoices/F-1/payments", json=with_changes(GOOD_PAYMENT, changes))
        context = {k: (v[:30] if isinstance(v, str) else v) for k, v in changes.items()}
        assert_error(r, 422, field=field, code="invalid", context=context)
    assert state() == before
    assert seeded.get("/invoices/F-1").json == f1


def test_post_payment_for_unknown_invoice_is_404(seeded):
    before = state()
    r = seeded.post("/invoices/NOPE/payments", json=GOOD_PAYMENT)
    assert_error(r, 404, field="number", code="not_found")
    assert state() == before


def test_post_link_for_unknown_debtor_is_404(seeded):
    before = state()
    assert_error(seeded.post("/debtors/NOPE/links"), 404, field="ref", code="not_found")
    assert state() == before


# --- query parameters ---------------------------------------------------------------------------------

BAD_INTEGERS = ["-1", "abc", "1.5", "²", "١", "9" * 5000, "", str(2**63), " 1", "1e3", "0x1", "+1", "1,2"]


def test_bad_events_parameters(seeded):
    for value in BAD_INTEGERS:
        assert_error(seeded.get("/events", query_string={"after": value}), 422, field="after", context=value)
    for value in BAD_INTEGERS + ["0", "1001"]:
        assert_error(seeded.get("/events", query_string={"limit": value}), 422, field="limit", context=value)
    # The edges that are allowed.
    assert seeded.get("/events?after=0&limit=1000").status_code == 200
    assert seeded.get(f"/events?after={2**62}&limit=1").json == {"events": []}


def test_bad_summary_as_of(seeded):
    for value in ["", "2026-02-30", "2026/01/01", "tomorrow", "1800-01-01", "2026-01-01T00:00:00", "26-01-01",
                  "٢٠٢٦-٠١-٠١", "9" * 5000, "2026-01-01,2026-02-01"]:
        assert_error(seeded.get("/reports/summary", query_string={"as_of": value}), 422, field="as_of",
                     context=value)


# --- routing ------------------------------------------------------------------------------------------

def test_unknown_paths_and_methods_answer_json(seeded):
    before = state()
    assert_error(seeded.get("/nope"), 404, code="not_found")
    assert_error(seeded.get("/debtors"), 404, code="not_found")
    assert_error(seeded.delete("/debtors/D1"), 405, code="method_not_allowed")
    assert_error(seeded.patch("/invoices/F-1", json={"amount": "1.00"}), 405, code="method_not_allowed")
    assert_error(seeded.post("/events", json={}), 405, code="method_not_allowed")
    assert state() == before
    assert seeded.get("/debtors/D1").status_code == 200


# --- generated input ----------------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30), st.floats(),
                    st.text(st.characters(exclude_categories=()), max_size=20))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=5)
ISO_DATES = st.dates(min_value=date(1985, 1, 1), max_value=date(2205, 1, 1)).map(date.isoformat)
AMOUNT_TEXT = st.one_of(st.decimals(min_value=-1, max_value=2 * 10**10, places=3, allow_nan=False).map(str),
                        st.from_regex(r"\A[0-9]{1,12}(\.[0-9]{1,4})?\Z"))
CURRENCIES = {"EUR": 2, "USD": 2, "JPY": 0, "BHD": 3}
INVOICE_FIELDS = st.fixed_dictionaries({}, optional={
    "debtor_ref": st.one_of(st.sampled_from(["D1", "D2"]), JSON),
    "issue_date": st.one_of(ISO_DATES, JSON),
    "due_date": st.one_of(ISO_DATES, JSON),
    "amount": st.one_of(AMOUNT_TEXT, JSON),
    "currency": st.one_of(st.sampled_from(["EUR", "USD", "JPY", "BHD", "eur", "XXX", "ZZZ"]), JSON),
})
_AMOUNT = re.compile(r"\A(0|[1-9][0-9]{0,15})(\.[0-9]+)?\Z")
_ISO = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


def _date(value):
    if not isinstance(value, str) or not _ISO.match(value):
        return None
    try:
        d = date.fromisoformat(value)
    except ValueError:
        return None
    return d if date(1990, 1, 1) <= d <= date(2199, 12, 31) else None


def acceptable_invoice(body: dict) -> bool:
    """What the contract accepts, written independently of the application's checks."""
    cur = body.get("currency")
    cur = cur.upper() if isinstance(cur, str) else None
    issue, due = _date(body.get("issue_date")), _date(body.get("due_date"))
    amount = body.get("amount")
    if body.get("debtor_ref") not in ("D1", "D2") or cur not in CURRENCIES or not issue or not due or due < issue:
        return False
    if not isinstance(amount, str) or not _AMOUNT.match(amount.strip()):
        return False
    value = Decimal(amount.strip())  # exact: comparisons below never round
    decimals = amount.strip().partition(".")[2].rstrip("0")
    return 0 < value <= 10**10 and len(decimals) <= CURRENCIES[cur]


@HYPOTHESIS
@given(body=INVOICE_FIELDS)
def test_put_invoice_generated_bodies(seeded, body):
    number = f"H-{next(_numbers)}"
    before = state()
    r = seeded.put(f"/invoices/{number}", json=body)
    assert r.status_code in (201, 422), (r.status_code, r.data[:300])
    if r.status_code == 422:
        assert_error(r, 422)
        assert not acceptable_invoice(body), (body, r.json)
        assert state() == before
        assert seeded.get(f"/invoices/{number}").status_code == 404
        return
    assert acceptable_invoice(body), body
    got = seeded.get(f"/invoices/{number}").json
    assert got == r.json
    assert (got["debtor_ref"], got["issue_date"], got["due_date"], got["currency"]) == \
        (body["debtor_ref"], body["issue_date"], body["due_date"], body["currency"].upper())
    assert Decimal(got["amount"]) == Decimal(body["amount"].strip())
    assert got["status"] == "open" and got["balance"] == got["amount"]


_numbers = itertools.count(1)

DEBTOR_FIELDS = st.fixed_dictionaries({}, optional={
    "name": st.one_of(st.sampled_from(["Alpha", " Beta  "]), JSON),
    "email": st.one_of(st.sampled_from(["a@example.com", "", None]), JSON),
    "language": st.one_of(st.sampled_from(["fr", "en"]), JSON),
    "profile": st.one_of(st.sampled_from(["standard", "risky", None]), JSON),
    "phone": st.one_of(st.sampled_from(["+33 1 02 03 04 05", None]), JSON),
    "kind": st.one_of(st.sampled_from(["business", "consumer", None]), JSON),
})


@HYPOTHESIS
@given(body=DEBTOR_FIELDS)
def test_put_debtor_generated_bodies(seeded, body):
    ref = f"G{next(_numbers)}"
    before = state()
    r = seeded.put(f"/debtors/{ref}", json=body)
    assert r.status_code in (201, 422), (r.status_code, r.data[:300])
    if r.status_code == 422:
        assert_error(r, 422)
        assert state() == before
        assert seeded.get(f"/debtors/{ref}").status_code == 404
        return
    got = seeded.get(f"/debtors/{ref}").json
    assert got["name"] == body["name"].strip()
    assert got["language"] == body.get("language", "fr")
    assert got["email"] == (body.get("email") or None)


PAYMENT_FIELDS = st.fixed_dictionaries({}, optional={
    "amount": st.one_of(AMOUNT_TEXT, JSON),
    "date": st.one_of(ISO_DATES, JSON),
    "reference": st.one_of(st.text(min_size=1, max_size=10), JSON),
})


@HYPOTHESIS
@given(body=PAYMENT_FIELDS)
def test_post_payment_generated_bodies(seeded, body):
    f4 = seeded.get("/invoices/F-4").json
    before = state()
    r = seeded.post("/invoices/F-4/payments", json=body)
    assert r.status_code in (200, 201, 409, 422), (r.status_code, r.data[:300])
    after = seeded.get("/invoices/F-4").json
    if r.status_code != 201:
        if r.status_code != 200:
            assert_error(r, r.status_code)
        assert state() == before
        assert after == f4
        return
    paid = Decimal(f4["amount_paid"]) + Decimal(r.json["allocated"])
    assert Decimal(after["amount_paid"]) == paid <= Decimal("5000.00")
    assert Decimal(r.json["allocated"]) + Decimal(r.json["unallocated"]) == Decimal(body["amount"].strip())
    assert r.json["reference"] == body["reference"].strip()
