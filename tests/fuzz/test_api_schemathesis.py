"""Schemathesis against the API's own OpenAPI document, in-process over WSGI.

Every operation is fed generated requests (valid ones and, for the bodies, invalid ones) with a
creditor's key; each answer must be no 5xx, carry a status and content type the document names,
and match the documented schema. A second creditor owns the same debtor references and invoice
numbers under distinctive names: no answer to the first creditor's key may ever contain them.
"""
from __future__ import annotations

import os

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)
from schemathesis.generation import GenerationMode

from support import Api

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
import collections
STATS = collections.Counter()
NUL_SENT = collections.Counter()  # bodies with a NUL (or a deceptive name) that reached the API, by operation
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
# Markers only the other creditor's rows carry: any of them in an answer to A is a leak.
B_MARKERS = ("Zorglub-Secret-Debtor", "zorglub-secret@b.example", "ZorglubTenant", "VIR-ZORGLUB")
SHARED_REFS = ["D1", "D2", "ACME/01"]
SHARED_NUMBERS = ["F-1", "F-2", "2026/0001"]


def _seed(api: Api, name: str, email: str, tag: str):
    for i, ref in enumerate(SHARED_REFS):
        r = api.put(f"/debtors/{ref}", json={"name": f"{name} {i}", "email": email.replace("@", f"+{i}@"),
                                             "language": "en"})
        assert r.status_code == 201, r.json
    for i, number in enumerate(SHARED_NUMBERS):
        r = api.put(f"/invoices/{number}", json={"debtor_ref": SHARED_REFS[i], "issue_date": "2026-01-01",
                                                 "due_date": "2026-02-01", "amount": "100.00", "currency": "EUR"})
        assert r.status_code == 201, r.json
    r = api.post("/invoices/F-1/payments", json={"amount": "10.00", "date": "2026-01-05", "reference": f"VIR-{tag}"})
    assert r.status_code == 201, r.json


@pytest.fixture
def tenants(make_app, new_creditor):
    client = make_app().test_client()
    a = new_creditor("Alpha Tenant")
    b = new_creditor("ZorglubTenant")
    _seed(Api(client, a), "Alpha Debtor", "alpha@a.example", "ALPHA")
    _seed(Api(client, b), "Zorglub-Secret-Debtor", "zorglub-secret@b.example", "ZORGLUB")
    return a, b


def leaks(body: bytes) -> list[str]:
    text = body.decode("utf-8", "replace")
    # JSON escapes nothing in these ASCII markers, but an answer might lower-case an e-mail.
    return [m for m in B_MARKERS if m.lower() in text.lower()]


def _operations(schema):
    ops = []
    for result in schema.get_all_operations():
        ops.append(result.ok())
    return ops


class StrictFormats:
    """The documented response schema again, formats included (date, date-time, uri, email):
    schemathesis's schema check leaves formats out, and a client's generated model will not."""

    def __init__(self, document: dict):
        self.document = document
        self.validators = {}
        self.validated = 0

    def check(self, case, response):
        content_type = response.headers.get("content-type") or response.headers.get("Content-Type") or [""]
        if "json" not in (content_type if isinstance(content_type, str) else content_type[0]):
            return
        op = self.document["paths"][case.operation.path][case.method.lower()]
        declared = op["responses"].get(str(response.status_code), {})
        schema = declared.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            return
        key = (case.operation.label, response.status_code)
        if key not in self.validators:
            self.validators[key] = jsonschema_rs.validator_for(
                {**schema, "components": self.document["components"]}, validate_formats=True)
        self.validated += 1
        errors = [e.message for e in self.validators[key].iter_errors(response.json())]
        assert not errors, (key, errors[:3], response.text[:500])


NUL_VALUES = ["\x00", "A\x00B", "Nul\x00 SARL", "x\x1by"]


def _with_nul(args):
    """A body with a NUL (or another unstorable character) in one of its text fields, or in a new
    one: on PostgreSQL such a text reaching an INSERT was a 500; it must be a 422 naming the field."""
    case, pick, value = args
    body = case.body if isinstance(case.body, dict) else {}
    texts = sorted(k for k, v in body.items() if isinstance(v, str)) or ["note"]
    case.body = {**body, texts[pick % len(texts)]: value}
    return case


def _has_nul(case) -> bool:
    return isinstance(case.body, dict) and any(isinstance(v, str) and any(c in v for c in "\x00\x1b")
                                               for v in case.body.values())


#: debtor names that would pass for another in the back office (issue 15 item 10)
DECEPTIVE_NAMES = ["\u202eLRAS ahplA", "Alpha\u2066 SARL", "\u200f", "\u200b", "\u200b\u2060\ufeff", "\u3164"]


def _with_deceptive_name(args):
    case, name = args
    case.body = {**(case.body if isinstance(case.body, dict) else {}), "name": name}
    return case


def _deceptive(case) -> bool:
    return isinstance(case.body, dict) and case.body.get("name") in DECEPTIVE_NAMES


def _with_debtor(pair):
    case, ref = pair
    if isinstance(case.body, dict):
        case.body = {**case.body, "debtor_ref": ref}
    return case


def test_api_matches_its_openapi_document(make_app, tenants):
    a, _b = tenants
    app = make_app()  # its own instance: requests never share the test's app context
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = _operations(schema)
    labels = {op.label for op in operations}
    assert {"PUT /debtors/{ref}", "GET /invoices/{number}", "POST /invoices/{number}/payments",
            "GET /events", "GET /reports/summary"} <= labels, labels
    strict = StrictFormats(app.test_client().get("/api/v1/openapi.json").json)
    failures = []
    STATS.clear()
    NUL_SENT.clear()
    for op in operations:
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if op.method.upper() in ("PUT", "POST")
                                              and op.body else [])
        strategies = []
        for mode in modes:
            strategies.append(op.as_strategy(generation_mode=mode))
            # Known refs and numbers too, or nearly every GET would only ever see 404.
            if op.path_parameters:
                name = next(iter(op.path_parameters)).name
                values = SHARED_REFS if name == "ref" else SHARED_NUMBERS
                strategies.append(st.sampled_from(values).flatmap(
                    lambda v, mode=mode, name=name: op.as_strategy(generation_mode=mode, path_parameters={name: v})))
        if op.label == "PUT /invoices/{number}":  # an existing debtor, or no invoice is ever created
            strategies.append(st.tuples(op.as_strategy(), st.sampled_from(SHARED_REFS)).map(_with_debtor))
        if op.label == "PUT /debtors/{ref}":
            strategies.append(st.tuples(op.as_strategy(), st.sampled_from(DECEPTIVE_NAMES)).map(_with_deceptive_name))
        if op.body and op.method.upper() in ("PUT", "POST"):  # NUL bytes in the bodies' texts
            strategies.append(st.tuples(op.as_strategy(), st.integers(0, 20), st.sampled_from(NUL_VALUES))
                              .map(_with_nul))

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=not os.environ.get("FUZZ_RANDOM"),
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies))
        def run(case):
            response = case.call_and_validate(headers=a.headers, checks=CHECKS)
            STATS[(op.label, response.status_code)] += 1
            if (_has_nul(case) or _deceptive(case)) and response.status_code != 401:  # it also tries without the key
                NUL_SENT[op.label] += 1
                assert response.status_code == 422, (case.body, response.status_code, response.text[:300])
            strict.check(case, response)
            found = leaks(response.content)
            assert not found, (case.method, case.formatted_path, found)

        try:
            run()
        except Exception as e:  # noqa: BLE001 - gather every operation's failure, then report them all
            failures.append(f"{op.label}: {e}")
    with_body = {op.label for op in operations if op.body and op.method.upper() in ("PUT", "POST")}
    assert with_body and all(NUL_SENT[label] for label in with_body), NUL_SENT  # each had its NULs
    seen = {status for (_label, status) in STATS}
    assert {200, 201, 404, 422} <= seen, STATS  # the run reached real rows, not only refusals
    assert strict.validated > len(operations) * 5, strict.validated
    assert not failures, "\n\n".join(failures)


def test_openapi_document_names_every_api_route(app):
    """The document and the URL map agree: no route undocumented, no documented path missing."""
    doc = app.test_client().get("/api/v1/openapi.json").json
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = rule.rule.removeprefix("/api/v1")
            for arg in rule.arguments:
                path = path.replace(f"<path:{arg}>", f"{{{arg}}}").replace(f"<{arg}>", f"{{{arg}}}")
            routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, m) for path, item in doc["paths"].items() for m in item if m != "parameters"}
    assert routes == documented
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters" or op.get("security") == []:
                continue
            assert "401" in op["responses"], (path, method)
            if "{" in path:
                assert "404" in op["responses"], (path, method)
