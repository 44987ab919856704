"""Characters no column can store (a NUL, another control character) in any back-office or portal
form field, any query parameter or any API body: 422 naming the field and nothing written, on
SQLite and on PostgreSQL, where such a text reaching an INSERT or a query was a 500 (issue 15,
item 3: a NUL in a plan step's text stopped the daily run). The form routes come from the URL
map, so a form added later is covered without editing this file."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import ApiKey, DunningStep
from portal.services import plans
from support import Api, back_office_login, portal_login, response_text

#: the field each form really reads, so the check meets what its view would store; others get "note"
FIELDS = {"creditor.login": "email", "creditor.api_keys": "label", "creditor.edit_step": "body_fr",
          "creditor.preview_step": "subject_en", "creditor.update_debtor_details": "address",
          "creditor.dispute_reply": "body", "creditor.dispute_resolve": "note", "creditor.set_terms": "contractual_rate",
          "creditor.notifications": "notify", "creditor.postpone": "until", "creditor.payment_settings":
          "partial_payment_min", "creditor.promise_settings": "promise_max_days", "creditor.dunning_release": "day",
          "debtor.dispute_create": "comment", "debtor.dispute_reply": "body", "debtor.promise_make": "amount",
          "debtor.pay": "amount"}
BAD = ["A\x00B", "\x00", "x\x1by", "x\x7f"]


def form_routes(app):
    """(method, path, endpoint) of every back-office and portal route that takes a form."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in ("creditor", "debtor"):
            path = rule.build({a: {"ref": "D1", "number": "F-1"}.get(a, 1) for a in rule.arguments},
                              append_unknown=False)[1]
            out += [(m, path, rule.endpoint) for m in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"})]
    return out


def table_counts() -> dict[str, int]:
    db.session.rollback()  # what requests committed
    return {t.name: db.session.scalar(select(func.count()).select_from(t)) for t in db.metadata.sorted_tables}


def assert_refused(r, field, where):
    assert r.status_code == 422, (where, r.status_code, r.get_data(as_text=True)[:300])
    text = response_text(r)
    assert f'data-field="{field}"' in text and (f"“{field}”" in text or f"« {field} »" in text), where


def test_every_form_refuses_unstorable_text_naming_the_field(app, make_app, seeded, creditor):
    office = back_office_login(make_app().test_client(), creditor)
    portal = make_app().test_client()
    portal_login(portal, app, "D1", creditor.id)
    routes = form_routes(app)
    assert {e for _m, _p, e in routes} >= set(FIELDS), "a form this test knows has gone: update FIELDS"
    before = table_counts()
    for method, path, endpoint in routes:
        browser = portal if endpoint.startswith("debtor.") else office
        field = FIELDS.get(endpoint, "note")
        for bad in BAD:
            r = browser.open(path, method=method, data={field: bad, "amount": "1", "body": "x", "date": "2030-01-01"}
                             if field not in ("amount", "body") else {field: bad})
            assert_refused(r, field, (method, path, repr(bad)))
    # A field's name counts as much as its value.
    assert_refused(office.post("/app/api-keys", data={"la\x00bel": "ok"}), "la?bel", "field name")
    changed = {t: (before[t], n) for t, n in table_counts().items() if before[t] != n}
    assert not changed, changed
    # Both sessions are untouched by the refusals.
    assert office.get("/app/").status_code == 200 and portal.get("/portal/").status_code == 200


def test_the_texts_that_crashed_postgresql_are_refused_and_the_run_goes_on(app, client, creditor):
    """A step text and an API key label with a NUL: refused, in French for a French creditor."""
    back_office_login(client, creditor)
    plans.ensure_default_plans(creditor.id)
    step = db.session.scalar(select(DunningStep).order_by(DunningStep.id).limit(1))
    texts = {f: getattr(step, f) for f in ("subject_fr", "body_fr", "subject_en", "body_en")}
    r = client.post(f"/app/plans/steps/{step.id}", data={"offset_days": str(step.offset_days), "channel": step.channel,
                                                         **texts, "body_fr": "Bonjour\x00 {{ debtor_name }}"})
    assert_refused(r, "body_fr", "step")
    assert "Caractères inutilisables" in response_text(r) and "Rien n'a été enregistré" in response_text(r)
    r = client.post("/app/api-keys", data={"label": "CI\x00"})
    assert_refused(r, "label", "api key")
    db.session.rollback()
    assert db.session.get(DunningStep, step.id).body_fr == texts["body_fr"]
    assert db.session.scalar(select(func.count()).select_from(ApiKey)) == 1  # the creditor's first key only
    # What the services themselves say, for a caller that is not a form.
    with pytest.raises(Exception, match="control characters"):
        plans.update_step(creditor.id, step.id, {**texts, "subject_en": "Hi\x00"})
    db.session.rollback()
    from portal.services import tenants
    with pytest.raises(Exception, match="control characters"):
        tenants.create_api_key(creditor.id, "label\x00")


@pytest.mark.parametrize("path, args, field", [
    ("/app/debtors", {"q": "Alpha\x00"}, "q"),
    ("/app/dashboard", {"as_of": "2026-01-01\x00"}, "as_of"),
    ("/app/disputes", {"status": "open\x00"}, "status"),
    ("/app/outbox", {"status": "\x00"}, "status"),
    ("/portal/statement", {"from": "2026-10-01\x00"}, "from"),
])
def test_query_parameters_are_checked_too(app, make_app, seeded, creditor, path, args, field):
    browser = make_app().test_client()
    if path.startswith("/portal"):
        portal_login(browser, app, "D1", creditor.id)
    else:
        back_office_login(browser, creditor)
    assert_refused(browser.get(path, query_string=args), field, path)


def _api_bodies():
    debtor = {"name": "Nul SARL", "email": "nul@example.com", "language": "fr", "phone": "+33612345678",
              "address": "1 rue A\n75001 Paris", "kind": "business", "profile": "standard"}
    invoice = {"debtor_ref": "D1", "issue_date": "2026-01-01", "due_date": "2026-02-01", "amount": "10.00",
               "currency": "EUR", "early_payment_discount": {"percent": "2", "until": "2026-01-10"}}
    payment = {"amount": "1.00", "date": "2026-01-05", "reference": "VIR-NUL"}
    cases = []
    for method, path, body in [("put", "/debtors/NUL1", debtor), ("put", "/invoices/NUL-1", invoice),
                               ("post", "/invoices/F-1/payments", payment)]:
        for key, value in body.items():
            bad = {**value, "until": "2026-01-10\x00"} if isinstance(value, dict) else value + "\x00"
            cases.append((method, path, {**body, key: bad}, key))
        cases.append((method, path, {**body, "comment": ["ok", "\x00"]}, "comment"))  # a field no one reads
    # Refused before the transaction is looked for: any id will do.
    cases.append(("post", "/bank-transactions/1/match", {"invoices": ["F-1\x00"]}, "invoices"))
    cases.append(("put", "/plans/standard", {"steps": [{"code": "reminder_1\x00", "offset_days": 1}]}, "steps"))
    cases.append(("post", "/tasks/1/outcome", {"outcome": "reached", "note": "appel\x00"}, "note"))
    return cases


API_CASES = _api_bodies()


@pytest.mark.parametrize("method, path, body, field", API_CASES, ids=[f"{m} {p} {f}" for m, p, _b, f in API_CASES])
def test_every_api_body_refuses_unstorable_text_naming_the_field(seeded, method, path, body, field):
    before = table_counts()
    r = getattr(seeded, method)(path, json=body)
    assert r.status_code == 422, (r.status_code, r.json)
    assert r.json["error"]["field"] == field, r.json
    assert "control characters" in r.json["error"]["message"]
    assert table_counts() == before


def test_the_api_cases_cover_every_api_route_with_a_body(app, client, creditor):
    """An API route added later must be added to the cases above (links and ignore: no body; a bank
    statement is a file, read by the gateways, whose text the service stores without NUL)."""
    with_body = {(m.lower(), rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api.")
                 for m in rule.methods & {"POST", "PUT", "PATCH"}} - {
        ("post", "/api/v1/debtors/<path:ref>/links"), ("post", "/api/v1/bank-transactions/<id>/ignore"),
        ("post", "/api/v1/bank-statements")}
    assert with_body == {("put", "/api/v1/debtors/<path:ref>"), ("put", "/api/v1/invoices/<path:number>"),
                         ("post", "/api/v1/invoices/<path:number>/payments"),
                         ("post", "/api/v1/bank-transactions/<id>/match"), ("put", "/api/v1/plans/<profile>"),
                         ("post", "/api/v1/tasks/<task_id>/outcome")}
    # A body nested as deep as the JSON parser takes is walked without recursion: 422, not 500.
    deep = "[" * 5000 + '"\\u0000"' + "]" * 5000
    r = Api(client, creditor).put("/debtors/DEEP", data='{"name": "x", "tags": ' + deep + "}",
                                  content_type="application/json")
    assert r.status_code in (400, 422) and r.is_json
