"""Names that pass for another in the back office (issue 15, item 10): bidirectional overrides,
embeddings, isolates and marks reorder what is shown, and a name made only of zero-width or other
invisible characters shows nothing. Refused for debtors (API, CSV import) and creditors (sign-up
and `creditor create`), with a 422 naming the field; ordinary names in any script pass."""
from __future__ import annotations

import pytest

from portal.extensions import db
from portal.models import Creditor, Debtor
from portal.services import Invalid, tenants
from portal.services.imports import import_csv
from support import count

BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e",
        "\u200f", "\u061c"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200b\u200b\u200b", "\u200b \u2060", "\u3164",
             "\u2800", "\ufe0f", "\u00a0\u200b"]
DECEPTIVE = ([(f"{c}Alpha SARL", "bidirectional") for c in BIDI]
             + [("Alpha\u202e LRAS", "bidirectional"), ("\u2067Alpha\u2069", "bidirectional")]
             + [(name, "no visible character") for name in INVISIBLE])
FINE = ["Alpha SARL", "Ôtel & Cie", "Müller GmbH", "שלום בע\"מ", "شركة الأمل", "株式会社テスト", "Zoë\u200dWork",
        "A\u200bB", "O'Brien-Smith"]


@pytest.mark.parametrize("name, words", DECEPTIVE, ids=[repr(n) for n, _w in DECEPTIVE])
def test_api_refuses_deceptive_debtor_names(api, name, words):
    r = api.put("/debtors/N1", json={"name": name, "language": "fr"})
    assert r.status_code == 422, r.json
    assert r.json["error"]["field"] == "name" and words in r.json["error"]["message"], r.json
    assert count(Debtor) == 0
    # Nor may an existing debtor be renamed so.
    assert api.put("/debtors/N2", json={"name": "Beta", "language": "fr"}).status_code == 201
    assert api.put("/debtors/N2", json={"name": name, "language": "fr"}).status_code == 422
    assert api.get("/debtors/N2").json["name"] == "Beta"


def test_ordinary_names_in_any_script_pass(api):
    for n, name in enumerate(FINE):
        r = api.put(f"/debtors/OK{n}", json={"name": name, "language": "fr"})
        assert r.status_code == 201, (name, r.json)
        assert r.json["name"] == name


def test_csv_import_refuses_them_on_their_line(app, creditor):
    header = "debtor_ref,debtor_name,debtor_email,invoice_number,issue_date,due_date,amount,currency\n"
    rows = "".join(f"C{n},{name},,F-{n},2026-09-01,2026-10-01,1.00,EUR\n" for n, (name, _w) in enumerate(DECEPTIVE))
    result = import_csv(db.session.get(Creditor, creditor.id),
                        (header + "OK,Fine SARL,,F-OK,2026-09-01,2026-10-01,1.00,EUR\n" + rows).encode())
    assert [(e.line, e.field) for e in result.errors] == [(n + 3, "debtor_name") for n in range(len(DECEPTIVE))]
    assert [words in e.message for e, (_n, words) in zip(result.errors, DECEPTIVE)] == [True] * len(DECEPTIVE)
    assert count(Debtor) == 0  # nothing of a file with a bad row


@pytest.mark.parametrize("name, words", DECEPTIVE[:3] + DECEPTIVE[-3:])
def test_creditor_names_are_refused_too(app, name, words):
    with pytest.raises(Invalid) as refused:
        tenants.create_creditor(name=name, email="owner@deceptive.example", password="long enough")
    assert refused.value.field == "name" and words in refused.value.message and refused.value.status == 422
    assert count(Creditor) == 0
