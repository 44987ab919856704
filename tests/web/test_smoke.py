from support import portal_login


def test_portal_shows_own_open_items(client, app, seeded, creditor):
    portal_login(client, app, "D1", creditor.id)
    r = client.get("/portal/")
    assert r.status_code == 200
    assert b"F-1" in r.data and b"F-2" in r.data
    assert b"F-3" not in r.data and b"Beta" not in r.data
