"""The debtor's postal address and kind (CONTRACT §4, issue 14 "The formal notice fit to send"):
through the API (PUT/GET /debtors/{ref}, the OpenAPI document) and the back office's debtor page
(the form at #address), on both engines. The CSV import leaves both alone."""
from __future__ import annotations

import re

import pytest

from support import Api, back_office_login, response_text

ADDRESS = "Alpha SARL\nService comptabilité\n12 rue des Lilas\n75011 PARIS"


def debtor_events(api, ref):
    return [e for e in api.get("/events").json["events"] if e["debtor_ref"] == ref]


# --- the API ------------------------------------------------------------------------------------

def test_put_debtor_sets_address_and_kind_and_get_returns_them(api):
    r = api.put("/debtors/P1", json={"name": "Mairie de Lille", "kind": "public", "address": ADDRESS})
    assert r.status_code == 201, r.json
    assert (r.json["kind"], r.json["address"]) == ("public", ADDRESS)
    got = api.get("/debtors/P1").json
    assert (got["kind"], got["address"]) == ("public", ADDRESS)


def test_address_is_tidied_crlf_spaces_and_empty_lines(api):
    r = api.put("/debtors/P1", json={"name": "A", "address": "  Alpha   SARL \r\n\r\n12 rue des Lilas\r\n75011  PARIS\n"})
    assert r.status_code == 201
    assert r.json["address"] == "Alpha SARL\n12 rue des Lilas\n75011 PARIS"


def test_fields_left_out_keep_their_value_and_null_or_empty_clears_the_address(api):
    api.put("/debtors/P1", json={"name": "Alpha", "email": "a@example.com", "kind": "consumer", "address": ADDRESS})
    r = api.put("/debtors/P1", json={"name": "Alpha SAS"})
    assert r.status_code == 200
    assert (r.json["name"], r.json["kind"], r.json["address"], r.json["email"]) == \
        ("Alpha SAS", "consumer", ADDRESS, "a@example.com")
    assert api.put("/debtors/P1", json={"name": "Alpha SAS", "address": None}).json["address"] is None
    assert api.get("/debtors/P1").json["address"] is None
    api.put("/debtors/P1", json={"name": "Alpha SAS", "address": ADDRESS})
    assert api.put("/debtors/P1", json={"name": "Alpha SAS", "address": ""}).json["address"] is None
    assert api.put("/debtors/P1", json={"name": "Alpha SAS", "address": " \n \n"}).json["address"] is None
    assert api.get("/debtors/P1").json["kind"] == "consumer"


def test_a_changed_address_is_an_event_naming_it_and_the_same_address_is_none(api):
    api.put("/debtors/P1", json={"name": "Alpha", "address": ADDRESS})
    api.put("/debtors/P1", json={"name": "Alpha", "address": ADDRESS})  # no change: no event
    api.put("/debtors/P1", json={"name": "Alpha", "address": "Alpha\n1 place du Marché\n59000 LILLE",
                                 "kind": "public"})
    events = debtor_events(api, "P1")
    assert [e["type"] for e in events] == ["debtor.created", "debtor.updated"]
    assert events[1]["data"]["fields"] == ["address", "kind"]


def test_bad_address_or_kind_is_422_naming_the_field_and_changes_nothing(api):
    api.put("/debtors/P1", json={"name": "Alpha", "address": ADDRESS, "kind": "business"})
    bad = [({"address": "\n".join(f"line {n}" for n in range(7))}, "address", "at most 6 lines"),
           ({"address": "x" * 39}, "address", "line 1 has 39 characters, at most 38"),
           ({"address": "ok\n" + "y" * 40}, "address", "line 2 has 40"),
           ({"address": ["Alpha", "Paris"]}, "address", "must be text"),
           ({"address": 12}, "address", "must be text"),
           ({"address": "Alpha\x00"}, "address", "control characters"),
           ({"kind": "company"}, "kind", "business, public, consumer"),
           ({"kind": ""}, "kind", "business, public, consumer")]
    for extra, field, words in bad:
        r = api.put("/debtors/P1", json={"name": "Changed", **extra})
        assert r.status_code == 422, (extra, r.json)
        assert r.json["error"]["field"] == field and words in r.json["error"]["message"], (extra, r.json)
    got = api.get("/debtors/P1").json
    assert (got["name"], got["address"], got["kind"]) == ("Alpha", ADDRESS, "business")
    # Six lines of 38 characters: the most a window envelope takes.
    full = "\n".join(chr(65 + n) * 38 for n in range(6))
    assert api.put("/debtors/P1", json={"name": "Alpha", "address": full}).json["address"] == full


def test_another_creditors_debtor_address_is_out_of_reach(api, client, new_creditor):
    other = Api(client, new_creditor("Other Corp"))
    assert other.put("/debtors/P9", json={"name": "Secret", "address": "Zorglub\n1 rue Cachée"}).status_code == 201
    assert api.get("/debtors/P9").status_code == 404
    r = api.put("/debtors/P9", json={"name": "Mine now", "address": ADDRESS})
    assert r.status_code == 201 and r.json["address"] == ADDRESS  # a debtor of its own, same ref
    assert other.get("/debtors/P9").json["address"] == "Zorglub\n1 rue Cachée"


def test_csv_import_keeps_the_address_and_kind(app, api, creditor):
    from portal.extensions import db
    from portal.models import Creditor
    from portal.services import imports
    api.put("/debtors/P1", json={"name": "Alpha", "address": ADDRESS, "kind": "public"})
    csv = ("debtor_ref,debtor_name,debtor_email,invoice_number,issue_date,due_date,amount,currency\n"
           "P1,Alpha renamed,alpha@example.com,F-1,2026-09-01,2026-10-01,100.00,EUR\n")
    db.session.rollback()
    result = imports.import_csv(db.session.get(Creditor, creditor.id), csv.encode())
    assert not result.errors
    got = api.get("/debtors/P1").json
    assert (got["name"], got["address"], got["kind"]) == ("Alpha renamed", ADDRESS, "public")


def test_openapi_documents_address_and_kind(client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    for name in ("DebtorInput", "Debtor"):
        props = schemas[name]["properties"]
        assert props["kind"]["enum"] == ["business", "public", "consumer"]
        assert props["address"]["type"] == ["string", "null"]
        assert "6 lines of at most 38 characters" in props["address"]["description"]


# --- the back office -----------------------------------------------------------------------------

def debtor_page(client, ref="P1"):
    return response_text(client.get(f"/app/debtors/{ref}"))


@pytest.fixture
def english(client, new_creditor):
    """A creditor whose back office speaks English, and its API."""
    who = new_creditor("English Works Ltd", language="en")
    return who, Api(client, who)


def test_back_office_form_at_address_shows_and_saves_the_address_and_kind(english, client):
    creditor, api = english
    api.put("/debtors/P1", json={"name": "Alpha", "language": "en"})
    back_office_login(client, creditor)
    page = debtor_page(client)
    assert re.search(r'<section[^>]* id="address"', page)
    form = re.search(r'<form method="post" action="(/app/debtors/P1/details)"', page)
    assert form, page
    assert 'name="address"' in page and 'name="kind"' in page
    r = client.post(form.group(1), data={"address": "Alpha\r\n12 rue des Lilas\r\n75011 PARIS", "kind": "public"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/app/debtors/P1")
    got = api.get("/debtors/P1").json
    assert (got["address"], got["kind"]) == ("Alpha\n12 rue des Lilas\n75011 PARIS", "public")
    event = debtor_events(api, "P1")[-1]
    assert event["type"] == "debtor.updated" and event["data"]["fields"] == ["address", "kind"]
    page = debtor_page(client)
    assert "Alpha\n12 rue des Lilas\n75011 PARIS</textarea>" in page
    assert re.search(r'<option value="public" selected>', page)
    # Emptied: the address is cleared, the kind kept; name, e-mail, language untouched.
    client.post("/app/debtors/P1/details", data={"address": "", "kind": "public"})
    got = api.get("/debtors/P1").json
    assert (got["address"], got["kind"], got["name"], got["language"]) == (None, "public", "Alpha", "en")


def test_back_office_refuses_a_bad_address_inline_keeping_what_was_typed(english, client):
    creditor, api = english
    api.put("/debtors/P1", json={"name": "Alpha", "address": ADDRESS})
    back_office_login(client, creditor)
    typed = "Alpha\n" + "Une adresse bien trop longue pour une enveloppe"
    r = client.post("/app/debtors/P1/details", data={"address": typed, "kind": "business"})
    assert r.status_code == 422
    page = response_text(r)
    err = re.search(r'<p class="field-error" id="address-error">([^<]+)</p>', page)
    assert err and "Line 2 has 47 characters" in err.group(1), page
    textarea = re.search(r"<textarea( id=\"address-lines\"[^>]*)>", page).group(1)
    assert 'aria-invalid="true"' in textarea and re.search(r'aria-describedby="[^"]*address-error', textarea)
    assert typed + "</textarea>" in page
    assert api.get("/debtors/P1").json["address"] == ADDRESS
    r = client.post("/app/debtors/P1/details", data={"address": ADDRESS, "kind": "pirate"})
    assert r.status_code == 422 and 'id="kind-error"' in response_text(r)
    assert len(debtor_events(api, "P1")) == 1  # created only


def test_back_office_speaks_french_to_a_french_creditor(api, client, creditor):
    api.put("/debtors/P1", json={"name": "Alpha", "kind": "public"})
    back_office_login(client, creditor)
    page = debtor_page(client)
    assert "Adresse postale" in page and '<option value="public" selected>Personne publique</option>' in page
    page = response_text(client.post("/app/debtors/P1/details",
                                     data={"address": "\n".join("abcdefg" for _ in range(7)), "kind": "business"}))
    assert "Une adresse compte 6 lignes au plus." in page
    page = response_text(client.post("/app/debtors/P1/details", data={"address": "x" * 40, "kind": "business"}))
    assert "La ligne 1 compte 40 caractères\u00a0: 38 au plus." in page  # no line break before the colon


def test_back_office_cannot_reach_another_creditors_debtor(api, client, creditor, new_creditor):
    other = Api(client, new_creditor("Other Corp"))
    other.put("/debtors/P9", json={"name": "Secret", "address": "Zorglub"})
    back_office_login(client, creditor)
    assert client.post("/app/debtors/P9/details", data={"address": "Mine", "kind": "business"}).status_code == 404
    assert other.get("/debtors/P9").json["address"] == "Zorglub"
