"""A dead link renewed by its debtor (CONTRACT §10): one button on an expired or revoked link's
page e-mails a fresh link to the address on file, at most 3 a day (the creditor's day), and the
page afterwards says the same whatever happened. Error pages link back where they can."""
import html
import re
import threading
from datetime import timedelta

from sqlalchemy import select

from dunning_jobs import outbox
from portal.extensions import db
from portal.models import Creditor, Debtor, Event, OutboxMessage, PortalLink, utcnow
from portal.services import ledger, links
from support import back_office_login, csrf_token_in, portal_login

EN = {"Accept-Language": "en"}
BUTTON = b"Send me a new link"
SENT_PAGE = b"Check your inbox"


def dead_link(app, creditor_id, ref="D1", revoke=False) -> str:
    """A link issued to `ref` and then expired (or revoked): its path /l/<token>."""
    with app.app_context():
        issued = links.issue(ledger.get_debtor(creditor_id, ref), issued_by="creditor")
        if revoke:
            links.revoke(creditor_id, issued.link.id)
        else:
            db.session.get(PortalLink, issued.link.id).expires_at = utcnow() - timedelta(seconds=1)
            db.session.commit()
        return issued.url.replace(app.config["PORTAL_BASE_URL"], "")


def messages(app) -> list[OutboxMessage]:
    with app.app_context():
        db.session.expire_all()
        return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "link")
                                       .order_by(OutboxMessage.id)))


def without_csrf(data: bytes) -> bytes:
    return re.sub(rb'<input[^>]*csrf_token[^>]*>|<meta name="csrf-token"[^>]*>|nonce="[^"]*"|integrity="[^"]*"',
                  b"", data)


def debtor_id(app, creditor_id, ref):
    with app.app_context():
        return ledger.get_debtor(creditor_id, ref).id


def test_expired_link_offers_one_button_that_emails_a_working_link(client, app, seeded, creditor):
    path = dead_link(app, creditor.id)
    page = client.get(path, headers=EN)
    assert page.status_code == 404
    assert page.data.count(BUTTON) == 1
    # No action: it posts to the page's own address (the token is never written into the page).
    form = re.search(rb'<form method="post">(.*?)</form>', page.data, re.S)
    assert path.encode().rsplit(b"/", 1)[1] not in page.data
    assert re.findall(rb"<input[^>]*>", form.group(1)) == [re.search(rb"<input[^>]*csrf_token[^>]*>",
                                                                      form.group(1)).group(0)]  # no field
    assert b"Alpha" not in page.data and b"alpha@" not in page.data

    done = client.post(path, headers=EN)
    assert done.status_code == 200 and SENT_PAGE in done.data and BUTTON not in done.data
    [message] = messages(app)
    assert message.to_addr == "alpha@example.com" and message.status == "pending"
    assert message.subject == "Votre nouveau lien vers votre compte Atelier Test"  # D1 reads French
    fresh = re.search(r"http://portal\.test(/l/\S+)", message.text_body).group(1)
    assert fresh != path and fresh in message.html_body
    with app.app_context():
        event = db.session.scalar(select(Event).where(Event.type == "link.resent"))
        assert event.debtor_id == message.debtor_id and event.actor == "debtor"
        assert event.data["message_id"] == message.id

    browser = app.test_client()
    opened = browser.get(fresh)
    assert opened.status_code == 303 and opened.headers["Location"] == "/portal/"
    with browser.session_transaction() as s:
        assert s["portal"]["debtor"] == debtor_id(app, creditor.id, "D1")
    assert b"Alpha SARL" in browser.get("/portal/").data

    # Without SMTP_URL it goes out as the outbox sends: delivered into the outbox.
    with app.app_context():
        assert outbox.send_pending().sent == 1
    assert messages(app)[0].status == "sent"


def test_french_page(client, app, seeded, creditor):
    path = dead_link(app, creditor.id)
    page = client.get(path, headers={"Accept-Language": "fr"})
    text = html.unescape(page.text)
    assert "M'envoyer un nouveau lien" in text
    assert "Recevez un nouveau lien à l'adresse e-mail que nous connaissons." in text
    done = client.post(path, headers={"Accept-Language": "fr"})
    assert "Consultez votre messagerie" in done.text


def test_three_a_day_and_the_fourth_page_says_the_same(client, app, seeded, creditor):
    path = dead_link(app, creditor.id)
    pages = [without_csrf(client.post(path, headers=EN).data) for _ in range(4)]
    assert len(messages(app)) == 3
    assert len(set(pages)) == 1
    other = dead_link(app, creditor.id, "D2")  # another debtor has its own three
    client.post(other, headers=EN)
    assert [m.to_addr for m in messages(app)] == ["alpha@example.com"] * 3 + ["beta@example.com"]
    with app.app_context():
        assert db.session.query(Event).filter_by(type="link.resent").count() == 4


def test_the_next_day_in_the_creditors_time_zone_allows_three_more(client, app, seeded, creditor):
    # 25 hours apart: whatever the hour, Kiritimati's date is Pago Pago's plus one or two days.
    with app.app_context():
        db.session.get(Creditor, creditor.id).timezone = "Pacific/Pago_Pago"
        db.session.commit()
    path = dead_link(app, creditor.id)
    for _ in range(4):
        client.post(path, headers=EN)
    assert len(messages(app)) == 3
    with app.app_context():
        db.session.get(Creditor, creditor.id).timezone = "Pacific/Kiritimati"
        db.session.commit()
    client.post(path, headers=EN)
    sent = messages(app)
    assert len(sent) == 4
    assert sent[3].daily_key.rsplit(":", 2)[1] > sent[0].daily_key.rsplit(":", 2)[1]


def test_revoked_link_renews_too(client, app, seeded, creditor):
    path = dead_link(app, creditor.id, revoke=True)
    assert BUTTON in client.get(path, headers=EN).data
    client.post(path, headers=EN)
    assert [m.to_addr for m in messages(app)] == ["alpha@example.com"]


def test_short_code_of_a_dead_link_renews(client, app, seeded, creditor):
    with app.app_context():
        issued = links.issue(ledger.get_debtor(creditor.id, "D2"), issued_by="creditor", short=True)
        links.revoke(creditor.id, issued.link.id)
        code = issued.link.short_code
    assert BUTTON in client.get(f"/l/{code}", headers=EN).data
    client.post(f"/l/{code}", headers=EN)
    assert [m.to_addr for m in messages(app)] == ["beta@example.com"]


def test_tampered_token_has_no_button_and_a_forged_post_sends_nothing(client, app, seeded, creditor):
    path = dead_link(app, creditor.id)
    head, _, signature = path.rpartition(".")
    tampered = f"{head}.{signature[:5]}{'A' if signature[5] != 'A' else 'B'}{signature[6:]}"
    page = client.get(tampered, headers=EN)
    assert page.status_code == 404 and BUTTON not in page.data and b"<form" not in page.data.split(b"<main")[-1]
    genuine = without_csrf(client.post(path, headers=EN).data)
    for forged in (tampered, "/l/not-a-token", "/l/" + "x" * 600, "/l/abcdefghjk"):
        r = client.post(forged, headers=EN)
        assert r.status_code == 200 and without_csrf(r.data) == genuine
    assert len(messages(app)) == 1  # the genuine one only


def test_csrf_required(make_app, app, seeded, creditor):
    browser = make_app(WTF_CSRF_ENABLED=True).test_client()
    path = dead_link(app, creditor.id)
    page = browser.get(path, headers=EN)
    assert browser.post(path, headers=EN).status_code == 400
    assert messages(app) == []
    r = browser.post(path, data={"csrf_token": csrf_token_in(page.data)}, headers=EN)
    assert r.status_code == 200 and SENT_PAGE in r.data
    assert len(messages(app)) == 1


def test_debtor_without_email_gets_nothing_and_the_same_page(client, app, seeded, creditor):
    path = dead_link(app, creditor.id)
    other = dead_link(app, creditor.id, "D2")
    with app.app_context():
        db.session.get(Debtor, debtor_id(app, creditor.id, "D1")).email = None
        db.session.commit()
    assert BUTTON in client.get(path, headers=EN).data
    nothing = without_csrf(client.post(path, headers=EN).data)
    assert messages(app) == []
    assert without_csrf(client.post(other, headers=EN).data) == nothing
    assert len(messages(app)) == 1


def test_concurrent_clicks_never_pass_three(make_app, app, seeded, creditor, engine_name):
    path = dead_link(app, creditor.id)
    browsers = [make_app().test_client() for _ in range(6)]
    start = threading.Barrier(len(browsers), timeout=120)
    codes = []

    def click(browser):
        start.wait()
        codes.append(browser.post(path, headers=EN).status_code)

    threads = [threading.Thread(target=click, args=(b,)) for b in browsers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 6
    sent = messages(app)
    # PostgreSQL counts under the debtor's row lock: exactly three. SQLite has no row locks: a
    # click that loses the race for a slot gives up, so one to three.
    assert (len(sent) == 3) if engine_name == "postgresql" else (1 <= len(sent) <= 3)
    assert len({m.daily_key for m in sent}) == len(sent)


def test_portal_404_links_home_only_inside_a_live_session(client, app, seeded, creditor):
    outside = client.get("/portal/no-such-page", headers=EN)
    assert outside.status_code == 404 and b'href="/portal/"' not in outside.data
    portal_login(client, app, "D1", creditor.id)
    for where in ("/portal/no-such-page", "/portal/invoices/NOPE.pdf", "/nowhere"):
        inside = client.get(where, headers=EN)
        assert inside.status_code == 404 and b'href="/portal/"' in inside.data, where


def test_the_creditor_sees_the_renewal_in_the_debtors_activity(client, make_app, app, seeded, creditor):
    path = dead_link(app, creditor.id)
    client.post(path, headers=EN)
    office = back_office_login(make_app().test_client(), creditor)
    page = html.unescape(office.get("/app/debtors/D1").get_data(as_text=True))
    activity = re.sub(r"<[^>]+>", "", page[page.index("Activit"):])  # the sentence names the debtor (a link)
    assert ("Alpha SARL asked for a new portal link: e-mailed to the address on file" in activity
            or "Alpha SARL a demandé un nouveau lien vers le portail\u00a0: envoyé à l'adresse e-mail enregistrée" in activity)
    outbox_page = html.unescape(office.get("/app/outbox").get_data(as_text=True))
    assert "alpha@example.com" in outbox_page
    assert "Nouveau lien vers le portail" in outbox_page or "New portal link" in outbox_page
