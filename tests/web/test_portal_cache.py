"""The account page is served from cache only while nothing on the account has changed."""
from support import portal_login


def test_page_follows_every_change(client, app, seeded, creditor):
    portal_login(client, app, "D1", creditor.id)
    first = client.get("/portal/").data.decode()
    assert "1\u202f200,00" in first and "F-9" not in first
    assert client.get("/portal/").data.decode() == first  # unchanged account: same page

    # A payment, a new invoice and an edit through the API all show on the next load.
    assert seeded.post("/invoices/F-1/payments", json={"amount": "200.00", "date": "2026-11-02",
                                                       "reference": "VIR-9"}).status_code == 201
    after_payment = client.get("/portal/").data.decode()
    assert "1\u202f000,00" in after_payment and "200,00" in after_payment
    seeded.put("/invoices/F-9", json={"debtor_ref": "D1", "issue_date": "2026-11-01", "due_date": "2026-12-01",
                                      "amount": "42.00", "currency": "EUR"})
    assert "F-9" in client.get("/portal/").data.decode()
    seeded.put("/debtors/D1", json={"name": "Alpha Renamed SARL", "email": "alpha@example.com", "language": "fr"})
    assert "Alpha Renamed SARL" in client.get("/portal/").data.decode()


def test_cached_page_never_crosses_sessions(client, app, make_app, seeded, creditor):
    portal_login(client, app, "D1", creditor.id)
    page_a = client.get("/portal/").data.decode()
    other = make_app().test_client()
    portal_login(other, app, "D2", creditor.id)
    page_b = other.get("/portal/").data.decode()
    assert "Beta Ltd" in page_b and "Alpha SARL" not in page_b
    assert "Alpha SARL" in client.get("/portal/").data.decode()
    # Same debtor, second browser: its own CSRF token, so its own page.
    third = make_app().test_client()
    portal_login(third, app, "D1", creditor.id)
    page_c = third.get("/portal/").data.decode()
    token = lambda html: html.split('name="csrf_token" value="')[1].split('"')[0]  # noqa: E731
    assert token(page_c) != token(page_a)
