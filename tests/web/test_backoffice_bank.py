"""The reconciliation screen through the test client: upload, suggestions first, confirm in one
click, match by number, ignore; in French by default."""
from __future__ import annotations

import io
from datetime import date

from recon_files import Entry, camt053
from support import back_office_login, flashes, response_text

DAY = date(2026, 11, 20)


def _upload(client, data: bytes, name="releve.xml"):
    return client.post("/app/bank/statements", data={"statement": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_upload_confirm_match_and_ignore(seeded, client, creditor):
    back_office_login(client, creditor)
    page = client.get("/app/bank")
    assert page.status_code == 200
    text = response_text(page)
    assert "Rapprochement bancaire" in text and "Importer un relevé bancaire" in text
    rf = seeded.get("/invoices/F-1").json["payment_reference"]
    r = _upload(client, camt053([Entry("1200.00", DAY, "B1", "ALPHA SARL", rf=rf),
                                 Entry("300.50", DAY, "B2", "ALPHA SARL", "paiement"),
                                 Entry("12.00", DAY, "B3", "M DUPONT", "divers"),
                                 Entry("7.00", DAY, "B4", "M MARTIN", "divers")]))
    assert r.status_code == 303
    page = client.get("/app/bank")
    text = response_text(page)
    assert any("4 nouveaux virements" in f for f in flashes(response_text(page)))
    # The suggestion comes first, with its reason and score.
    assert text.index("Rapprochements suggérés") < text.index("Virements à rapprocher")
    assert "score" in text and "F-2" in text
    [suggested] = seeded.get("/bank-transactions?status=suggested").json["transactions"]
    unmatched = seeded.get("/bank-transactions?status=unmatched").json["transactions"]
    assert client.post(f"/app/bank/transactions/{suggested['id']}/match", data={}).status_code == 303
    assert seeded.get("/invoices/F-2").json["status"] == "paid"
    by_payer = {t["counterparty"]: t["id"] for t in unmatched}
    r = client.post(f"/app/bank/transactions/{by_payer['M DUPONT']}/match", data={"invoices": "F-3"})
    assert r.status_code == 303
    assert seeded.get("/invoices/F-3").json["amount_paid"] == "12.00"
    r = client.post(f"/app/bank/transactions/{by_payer['M MARTIN']}/match", data={"invoices": "F-3, F-1"},
                    follow_redirects=True)
    assert "Choisissez des factures d'un seul débiteur." in flashes(response_text(r))
    r = client.post(f"/app/bank/transactions/{by_payer['M MARTIN']}/ignore", follow_redirects=True)
    assert "Virement ignoré." in flashes(response_text(r))
    assert seeded.get("/bank-transactions?status=ignored").json["transactions"][0]["reason"] == "manual"


def test_unreadable_upload_and_other_creditors_lines(seeded, client, creditor, new_creditor):
    back_office_login(client, creditor)
    r = _upload(client, b"pas un releve", "x.txt")
    assert r.status_code == 422
    assert any("Rien n'a été importé" in f for f in flashes(response_text(r)))
    _upload(client, camt053([Entry("12.00", DAY, "B3", "M DUPONT", "divers")]))
    [tx] = seeded.get("/bank-transactions").json["transactions"]
    client.post("/app/logout")
    back_office_login(client, new_creditor("Other"))
    assert client.post(f"/app/bank/transactions/{tx['id']}/ignore").status_code == 404
    assert "M DUPONT" not in response_text(client.get("/app/bank"))
