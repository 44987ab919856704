"""Portal links (CONTRACT §5): signed, bound to one debtor, expiring, revocable; the token never
stays in the address; a refused link reveals nothing about anyone."""
import re
import time
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from portal.extensions import db
from portal.models import Event, PortalLink, utcnow
from portal.services import disputes, ledger, links
from support import portal_login

# Everything the seeded ledger could reveal about anyone: names, refs, invoices, e-mails.
SECRETS = [b"Atelier Test", b"Alpha SARL", b"Beta Ltd", b"D1", b"D2", b"F-1", b"F-2", b"F-3", b"F-4",
           b"alpha@example.com", b"beta@example.com", b"creditor1.test"]


def issue(app, creditor_id, ref, **kwargs):
    """Issue a link in `app` (its SECRET_KEY); return (link id, path, token)."""
    with app.app_context():
        issued = links.issue(ledger.get_debtor(creditor_id, ref), issued_by="creditor", **kwargs)
        url = issued.url
        link_id = issued.link.id
    path = url.replace(app.config["PORTAL_BASE_URL"], "")
    assert path.startswith("/l/")
    return link_id, path, path[len("/l/"):]


def portal_state(client):
    with client.session_transaction() as s:
        return dict(s.get("portal") or {})


def page(data: bytes) -> bytes:
    """The page without its CSRF token and subresource hashes, random text that could spell "D2"."""
    return re.sub(rb'<input[^>]*csrf_token[^>]*>|integrity="[^"]*"', b"", data)


def assert_reveals_nothing(response):
    for secret in SECRETS:
        assert secret not in page(response.data), secret
    assert response.headers.get("Location") is None


def assert_logged_out(client):
    r = client.get("/portal/")
    assert r.status_code == 401
    assert_reveals_nothing(r)
    assert portal_state(client) == {}


def flip(segment: str, i: int) -> str:
    # A middle character of a base64 segment carries 6 significant bits: changing it changes the bytes.
    return segment[:i] + ("A" if segment[i] != "A" else "B") + segment[i + 1:]


# --- opening -----------------------------------------------------------------------------

def test_valid_link_redirects_without_token(client, app, seeded, creditor):
    link_id, path, token = issue(app, creditor.id, "D1")
    r = client.get(path)
    assert r.status_code == 303
    assert r.headers["Location"] == "/portal/"
    assert token not in r.headers["Location"]
    assert all(token not in c for c in r.headers.getlist("Set-Cookie"))
    assert r.headers["Cache-Control"] == "no-store"
    home = client.get(r.headers["Location"])
    assert home.status_code == 200
    assert token.encode() not in home.data
    assert b"Alpha SARL" in home.data and b"F-1" in home.data
    assert portal_state(client)["debtor"] == ledger_id(app, creditor.id, "D1")
    assert portal_state(client)["link"] == link_id


def test_follow_redirects_final_page_never_has_token(client, app, seeded, creditor):
    _, path, token = issue(app, creditor.id, "D2")
    r = client.get(path, follow_redirects=True)
    assert r.status_code == 200
    assert r.request.path == "/portal/"
    assert [h.status_code for h in r.history] == [303]
    assert token.encode() not in r.data
    assert b"Beta Ltd" in r.data and b"F-3" in r.data


def ledger_id(app, creditor_id, ref):
    with app.app_context():
        return ledger.get_debtor(creditor_id, ref).id


# --- refused links -----------------------------------------------------------------------

def refused(client, path):
    r = client.get(path)
    assert r.status_code == 404, r.status_code
    assert_reveals_nothing(r)
    assert b"<h1>" in r.data  # an actual error page, not an empty body
    assert portal_state(client) == {}
    return r


def no_open_recorded(app, link_id):
    with app.app_context():
        link = db.session.get(PortalLink, link_id)
        assert link.open_count == 0 and link.first_opened_at is None
        opened = db.session.scalars(select(Event).where(Event.type == "portal.opened")).all()
        assert opened == []


def test_link_sent_about_a_dispute_lands_on_its_thread(client, app, seeded, creditor):
    """The dispute's id is signed into the token: opening it lands on that thread, not home."""
    with app.app_context():
        debtor = ledger.get_debtor(creditor.id, "D1")
        dispute = disputes.open_dispute(debtor.id, "F-1", reason="not_received", comment="Never got it.")
        dispute_id = dispute.id
    _, path, token = issue(app, creditor.id, "D1", dispute_id=dispute_id)
    r = client.get(path)
    assert r.status_code == 303 and r.headers["Location"] == f"/portal/disputes/{dispute_id}"
    thread = client.get(r.headers["Location"])
    assert thread.status_code == 200 and b"Never got it." in thread.data and token.encode() not in thread.data


def test_signed_token_with_a_landing_that_is_not_an_id_refused(client, app, seeded, creditor):
    link_id, _, _ = issue(app, creditor.id, "D1")
    with app.app_context():
        nonce = db.session.get(PortalLink, link_id).nonce
    forged = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=links.SALT).dumps(
        {"l": link_id, "n": nonce, "d": "../../app"})
    refused(client, "/l/" + forged)
    no_open_recorded(app, link_id)


def test_token_structure_is_what_the_tamper_tests_assume(app, seeded, creditor):
    _, _, token = issue(app, creditor.id, "D1")
    payload, timestamp, signature = token.split(".")
    assert len(payload) > 20 and len(signature) > 20 and timestamp


@pytest.mark.parametrize("part", [0, 1, 2])  # payload, timestamp, signature
def test_tampered_token_refused(client, app, seeded, creditor, part):
    link_id, _, token = issue(app, creditor.id, "D1")
    segments = token.split(".")
    segments[part] = flip(segments[part], len(segments[part]) // 2)
    tampered = ".".join(segments)
    assert tampered != token
    refused(client, "/l/" + tampered)
    no_open_recorded(app, link_id)
    client.get("/l/" + token)  # the genuine one still opens
    assert portal_state(client)["link"] == link_id


@pytest.mark.parametrize("cut", [1, 5, 30])
def test_truncated_token_refused(client, app, seeded, creditor, cut):
    link_id, _, token = issue(app, creditor.id, "D1")
    refused(client, "/l/" + token[:-cut])
    no_open_recorded(app, link_id)


def test_garbage_refused(client, app, seeded, creditor):
    for path in ["/l/x", "/l/" + "A" * 600, "/l/a.b.c", "/l/%00", "/l/..%2f..%2fportal", "/l/a/b/c",
                 "/l/eyJsIjoxLCJuIjoiIn0.aaaa.bbbb", "/l/%ff%fe", "/l/" + "é" * 10]:
        refused(client, path)


def test_token_for_another_link_id_with_other_nonce_refused(client, app, seeded, creditor):
    # A correctly signed payload naming a real link but not its nonce (e.g. an old leaked key
    # cannot name rows it never saw): refused.
    link_id, _, _ = issue(app, creditor.id, "D1")
    forged = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=links.SALT).dumps({"l": link_id, "n": "0" * 32})
    refused(client, "/l/" + forged)
    no_open_recorded(app, link_id)


def test_token_signed_with_another_secret_key_refused(client, app, make_app, seeded, creditor):
    other = make_app(SECRET_KEY="other")
    link_id, path, _ = issue(other, creditor.id, "D1")  # a real row in the same database
    assert other.test_client().get(path).status_code == 303  # valid where it was signed
    refused(client, path)
    with app.app_context():
        db.session.expire_all()
        assert db.session.get(PortalLink, link_id).open_count == 1  # only the genuine open


def test_expired_link_refused(client, app, seeded, creditor):
    link_id, path, _ = issue(app, creditor.id, "D1")
    link = db.session.get(PortalLink, link_id)
    link.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    refused(client, path)
    no_open_recorded(app, link_id)


def test_link_older_than_max_age_refused_even_if_row_says_otherwise(client, app, seeded, creditor):
    # itsdangerous' own timestamp is the second lock: a token signed 46 days ago is refused
    # with the default 45-day lifetime, whatever expires_at says.
    link_id, _, _ = issue(app, creditor.id, "D1")
    link = db.session.get(PortalLink, link_id)
    link.expires_at = utcnow() + timedelta(days=400)
    db.session.commit()

    class SignedDaysAgo(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - 46 * 86400

    old = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=links.SALT, signer=SignedDaysAgo).dumps(
        {"l": link.id, "n": link.nonce})
    assert app.config["PORTAL_LINK_MAX_AGE_DAYS"] == 45
    refused(client, "/l/" + old)
    no_open_recorded(app, link_id)


def test_max_age_setting_shortens_expiry(make_app, app, seeded, creditor):
    short = make_app(PORTAL_LINK_MAX_AGE_DAYS=2)
    with short.app_context():
        issued = links.issue(ledger.get_debtor(creditor.id, "D1"), issued_by="creditor")
        lifetime = issued.link.expires_at - utcnow()
    assert timedelta(days=2) - timedelta(minutes=1) < lifetime <= timedelta(days=2)


def test_revoked_link_refused(client, app, seeded, creditor):
    link_id, path, _ = issue(app, creditor.id, "D1")
    links.revoke(creditor.id, link_id)
    refused(client, path)
    no_open_recorded(app, link_id)


def test_revoke_only_by_its_creditor(app, new_creditor, seeded, creditor):
    from portal.services import NotFound
    link_id, _, _ = issue(app, creditor.id, "D1")
    other = new_creditor("Other")
    with pytest.raises(NotFound):
        links.revoke(other.id, link_id)
    assert db.session.get(PortalLink, link_id).revoked_at is None


def test_refused_link_ends_an_open_session(client, app, seeded, creditor):
    portal_login(client, app, "D1", creditor.id)
    assert client.get("/portal/").status_code == 200
    refused(client, "/l/not-a-token")
    assert_logged_out(client)


# --- sessions ----------------------------------------------------------------------------

def test_revoking_ends_an_open_session(client, app, seeded, creditor):
    portal_login(client, app, "D1", creditor.id)
    link_id = portal_state(client)["link"]
    assert client.get("/portal/statement").status_code == 200
    links.revoke(creditor.id, link_id)
    r = client.get("/portal/statement")
    assert r.status_code == 401
    assert_reveals_nothing(r)
    assert client.get("/portal/invoices/F-1.pdf").status_code == 401
    assert_logged_out(client)


def test_expiry_ends_an_open_session(client, app, seeded, creditor):
    portal_login(client, app, "D1", creditor.id)
    link = db.session.get(PortalLink, portal_state(client)["link"])
    link.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert_logged_out(client)


def test_revoking_another_link_of_the_same_debtor_keeps_the_session(client, app, seeded, creditor):
    old_id, _, _ = issue(app, creditor.id, "D1")
    portal_login(client, app, "D1", creditor.id)
    links.revoke(creditor.id, old_id)
    assert client.get("/portal/").status_code == 200


def test_switching_debtor_replaces_the_whole_session(client, app, seeded, creditor):
    portal_login(client, app, "D1", creditor.id, invoice_numbers=["F-1"])
    a_link = portal_state(client)["link"]
    assert portal_state(client)["select"] == ["F-1"]
    with client.session_transaction() as s:
        s["leftover"] = "from A"  # anything else the session may have gathered
    assert client.get("/portal/").status_code == 200

    portal_login(client, app, "D2", creditor.id)
    state = portal_state(client)
    assert state["debtor"] == ledger_id(app, creditor.id, "D2")
    assert state["link"] != a_link and state["select"] == []
    assert state["lang"] == "en"  # B's language, not A's
    with client.session_transaction() as s:
        assert "leftover" not in s
    home = page(client.get("/portal/").data)
    assert b"Beta Ltd" in home and b"F-3" in home and b"F-4" in home
    assert b"Alpha SARL" not in home and b"F-1" not in home and b"F-2" not in home
    assert b'<html lang="en">' in home
    statement = page(client.get("/portal/statement").data)
    assert b"F-3" in statement and b"F-1" not in statement
    assert client.get("/portal/invoices/F-1.pdf").status_code == 404
    # The session now hangs on B's link only: revoking A's changes nothing, revoking B's ends it.
    links.revoke(creditor.id, a_link)
    assert client.get("/portal/").status_code == 200
    links.revoke(creditor.id, state["link"])
    assert_logged_out(client)


def test_every_open_is_recorded(client, app, seeded, creditor):
    link_id, path, _ = issue(app, creditor.id, "D1")
    assert client.get(path).status_code == 303
    db.session.expire_all()
    link = db.session.get(PortalLink, link_id)
    first, last = link.first_opened_at, link.last_opened_at
    assert first is not None and last == first and link.open_count == 1

    assert app.test_client().get(path).status_code == 303  # the same link, another browser
    db.session.expire_all()
    link = db.session.get(PortalLink, link_id)
    assert link.open_count == 2
    assert link.first_opened_at == first
    assert link.last_opened_at >= first

    opened = db.session.scalars(select(Event).where(Event.type == "portal.opened").order_by(Event.id)).all()
    assert len(opened) == 2
    debtor_id = ledger_id(app, creditor.id, "D1")
    for event in opened:
        assert (event.creditor_id, event.debtor_id, event.actor) == (creditor.id, debtor_id, "debtor")
        assert event.data["link_id"] == link_id
    assert [e.data["first"] for e in opened] == [True, False]
    # ...and the creditor's API feed shows them.
    feed = seeded.get("/events").json["events"]
    assert [e["debtor_ref"] for e in feed if e["type"] == "portal.opened"] == ["D1", "D1"]


# --- cookies and logout ------------------------------------------------------------------

def session_cookie(response):
    for header in response.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        if "session" in cookie:
            return header, cookie["session"]
    raise AssertionError("no session cookie set")


def test_session_cookie_flags_http(client, app, seeded, creditor):
    _, path, _ = issue(app, creditor.id, "D1")
    header, morsel = session_cookie(client.get(path))
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert not morsel["secure"]  # plain-http development base URL
    assert morsel["expires"]  # bounded lifetime, not a forever cookie


def test_session_cookie_secure_when_base_url_is_https(make_app, seeded, creditor):
    https = make_app(PORTAL_BASE_URL="https://x.test")
    _, path, _ = issue(https, creditor.id, "D1")
    r = https.test_client().get(path, base_url="https://x.test")
    assert r.status_code == 303
    header, morsel = session_cookie(r)
    assert morsel["secure"] is True and morsel["httponly"] is True and morsel["samesite"] == "Lax"
    assert "max-age" in r.headers.get("Strict-Transport-Security", "")


def test_logout_ends_the_session(client, app, seeded, creditor):
    portal_login(client, app, "D1", creditor.id)
    assert client.get("/portal/").status_code == 200
    r = client.post("/portal/logout")
    assert r.status_code == 200
    assert b"Alpha SARL" not in r.data
    assert_logged_out(client)
    assert client.get("/portal/invoices/F-1.pdf").status_code == 401


def test_logout_is_post_only(client, app, seeded, creditor):
    portal_login(client, app, "D1", creditor.id)
    assert client.get("/portal/logout").status_code == 405
    assert client.get("/portal/").status_code == 200


# --- rate limit --------------------------------------------------------------------------

def test_link_opening_rate_limited_per_address(make_app, seeded, creditor):
    limited = make_app(RATELIMIT_ENABLED=True)
    _, path, _ = issue(limited, creditor.id, "D1")
    c = limited.test_client()
    statuses = [c.get(f"/l/guess{i}").status_code for i in range(30)]
    assert statuses == [404] * 30
    assert c.get("/l/guess-31").status_code == 429
    assert c.get(path).status_code == 429  # even a valid link waits: the address is throttled
    # Another address is not affected.
    other = limited.test_client()
    assert other.get(path, environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code == 303
