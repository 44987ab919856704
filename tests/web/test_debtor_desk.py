"""The debtor page as a workplace (issue 18): contacts edited through the API's checks, the
collector in charge, notes that e-mail the colleagues they mention, and what the page reads (the
invoice status in words, PDFs, promises, disputes, the messages sent, portal links in the
creditor's time zone), each creditor walled off from the others. Both engines."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from portal.extensions import db
from portal.models import CreditorMembership, CreditorUser, Debtor, DebtorNote, Event, OutboxMessage
from support import Api, back_office_login, csrf_token_in, flashes, look, response_text


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url, "MAIL_FROM": "Atelier Test <relances@atelier.test>"}


def add_colleague(creditor_id: int, email: str) -> int:
    """Another user of this creditor (and its membership, as migration 0018 backfilled them)."""
    user = CreditorUser(creditor_id=creditor_id, email=email, password_hash=generate_password_hash("x" * 12))
    db.session.add(user)
    db.session.flush()
    db.session.add(CreditorMembership(user_id=user.id, creditor_id=creditor_id))
    db.session.commit()
    return user.id


def debtor_row(creditor_id: int, ref: str) -> Debtor:
    return look(lambda: db.session.scalar(select(Debtor).where(Debtor.creditor_id == creditor_id, Debtor.ref == ref)))


def events_of(type_: str) -> list[Event]:
    return look(lambda: list(db.session.scalars(select(Event).where(Event.type == type_).order_by(Event.id))))


@pytest.fixture
def office(client, creditor, seeded):
    return back_office_login(client, creditor)


# --- contacts ------------------------------------------------------------------------------------

def test_contacts_are_saved_phone_in_e164_with_the_apis_event(office, creditor, api):
    r = office.post("/app/debtors/D1/contacts", data={
        "email": " compta@alpha.fr ", "phone": "06 12 34 56 78", "language": "en",
        "ap_contact": "Mme Martin, service fournisseurs\r\nle mardi matin"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/app/debtors/D1#contacts")
    d = debtor_row(creditor.id, "D1")
    assert (d.email, d.phone, d.language, d.ap_contact) == (
        "compta@alpha.fr", "+33612345678", "en", "Mme Martin, service fournisseurs\nle mardi matin")
    assert d.name == "Alpha SARL"  # not on this form: kept
    event = events_of("debtor.updated")[-1]
    assert event.actor == "creditor" and event.data["fields"] == ["ap_contact", "email", "language", "phone"]
    page = response_text(office.get("/app/debtors/D1"))
    assert "06 12 34 56 78" in page and "le mardi matin" in page
    assert api.get("/debtors/D1").json["phone"] == "+33612345678"
    # The same again changes nothing and records nothing; emptied, the phone is cleared.
    office.post("/app/debtors/D1/contacts", data={"email": "compta@alpha.fr", "phone": "+33 6 12 34 56 78",
                                                   "language": "en", "ap_contact": "Mme Martin, service fournisseurs\nle mardi matin"})
    assert len(events_of("debtor.updated")) == 1
    office.post("/app/debtors/D1/contacts", data={"email": "compta@alpha.fr", "phone": "", "language": "en",
                                                   "ap_contact": ""})
    d = debtor_row(creditor.id, "D1")
    assert (d.phone, d.ap_contact) == (None, None)


@pytest.mark.parametrize("field, value, words", [
    ("email", "not-an-address", "Enter a valid e-mail address"),
    ("phone", "12", "This number is too short."),
    ("phone", "+999 1234", "Unknown country code"),
    ("phone", "bonjour", "This is not a phone number"),
    ("language", "de", "Choose French or English."),
    ("ap_contact", "x" * 1001, "1,000 characters at most"),
])
def test_bad_contacts_are_refused_with_422_on_their_field_and_nothing_changes(client, new_creditor, field, value, words):
    who = new_creditor("English Works Ltd", language="en")
    Api(client, who).put("/debtors/D1", json={"name": "Alpha", "email": "a@alpha.fr", "language": "fr"})
    back_office_login(client, who)
    typed = {"email": "new@alpha.fr", "phone": "06 12 34 56 78", "language": "fr", "ap_contact": "Paul", field: value}
    r = client.post("/app/debtors/D1/contacts", data=typed)
    assert r.status_code == 422
    page = response_text(r)
    err = re.search(rf'<p class="field-error" id="{field}-error">([^<]+)</p>', page)
    assert err and words in err.group(1), page[-3000:]
    assert 'value="new@alpha.fr"' in page or field == "email"  # what was typed comes back
    d = debtor_row(who.id, "D1")
    assert (d.email, d.phone, d.ap_contact) == ("a@alpha.fr", None, None)
    assert events_of("debtor.updated") == []


def test_a_corrected_email_sends_the_refused_step_again(client, creditor, api, smtp_server):
    from dunning_jobs import day as dunning_day
    from portal.models import Reminder
    day0 = date(2026, 6, 1)
    api.put("/debtors/Y", json={"name": "Y SARL", "email": "wrong@example.com"})
    due = day0 - timedelta(days=3)
    api.put("/invoices/Y-1", json={"debtor_ref": "Y", "issue_date": (due - timedelta(days=30)).isoformat(),
                                   "due_date": due.isoformat(), "amount": "250.00", "currency": "EUR"})
    smtp_server.handler.refuse = {"wrong@example.com": "550 5.1.1 no such user"}
    assert dunning_day.run(day0).failed == 1
    back_office_login(client, creditor)
    r = client.post("/app/debtors/Y/contacts", data={"email": "right@example.com", "language": "fr"})
    assert r.status_code == 303
    reminder = look(lambda: db.session.scalars(select(Reminder)).one())
    assert (reminder.status, reminder.message_id) == ("planned", None)
    assert [e.data for e in events_of("reminder.replanned")] == [{"step": "reminder_1"}]
    smtp_server.handler.take()
    assert dunning_day.run(day0 + timedelta(days=1)).sent == 1
    assert [m.rcpt_tos for m in smtp_server.handler.take()] == [["right@example.com"]]


def test_french_creditor_reads_the_refusal_in_french(office):
    page = response_text(office.post("/app/debtors/D1/contacts", data={"email": "x", "language": "fr"}))
    assert "Saisissez une adresse e-mail valide" in page
    page = response_text(office.post("/app/debtors/D1/contacts", data={"language": "fr", "ap_contact": "x" * 1001}))
    assert "1\u202f000 caractères au plus" in page or "1\u00a0000 caractères au plus" in page


# --- the collector in charge ----------------------------------------------------------------------

def test_owner_is_chosen_among_the_creditors_users_shown_and_filtered_as_mine(office, creditor, new_creditor):
    me = look(lambda: db.session.scalar(select(CreditorUser.id).where(CreditorUser.email == creditor.email)))
    colleague = add_colleague(creditor.id, "marie@atelier.test")
    outsider = new_creditor("Other Corp")
    stranger = look(lambda: db.session.scalar(select(CreditorUser.id).where(CreditorUser.email == outsider.email)))
    page = response_text(office.get("/app/debtors/D1"))
    assert f'<option value="{colleague}">marie@atelier.test</option>' in page
    assert outsider.email not in page
    r = office.post("/app/debtors/D1/owner", data={"owner": str(colleague)})
    assert r.status_code == 303
    assert debtor_row(creditor.id, "D1").owner_id == colleague
    event = events_of("debtor.owner_changed")[-1]
    assert (event.data["owner"], event.data["previous"], event.data["user"]) == ("marie@atelier.test", None, creditor.email)
    assert 'id="owner-now">marie@atelier.test' in response_text(office.get("/app/debtors/D1"))
    # Another creditor's user: refused, nothing changes.
    r = office.post("/app/debtors/D1/owner", data={"owner": str(stranger)})
    assert r.status_code == 422 and 'id="owner-error"' in response_text(r)
    assert debtor_row(creditor.id, "D1").owner_id == colleague
    # Mine: only the debtors I am in charge of.
    office.post("/app/debtors/D2/owner", data={"owner": str(me)})
    listing = response_text(office.get("/app/debtors?mine=1"))
    assert "/app/debtors/D2" in listing and "/app/debtors/D1" not in listing
    listing = response_text(office.get("/app/debtors"))
    assert "/app/debtors/D1" in listing and "marie@atelier.test" in listing
    office.post("/app/debtors/D1/owner", data={"owner": ""})
    assert debtor_row(creditor.id, "D1").owner_id is None
    assert events_of("debtor.owner_changed")[-1].data["previous"] == "marie@atelier.test"


# --- notes and mentions -----------------------------------------------------------------------------

def test_a_note_mentioning_a_colleague_emails_them_once_through_the_outbox_not_the_author(
        office, creditor, new_creditor, smtp_server):
    from dunning_jobs import outbox
    add_colleague(creditor.id, "marie.dupont@atelier.test")
    add_colleague(creditor.id, "paul@atelier.test")
    outsider = new_creditor("Other Corp", email="jean@other.test")
    me = creditor.email.partition("@")[0]
    body = (f"Appelé ce matin. @marie.dupont peux-tu vérifier l'avoir ? @{me} relance vendredi. "
            "@jean n'est pas chez nous, paul@atelier.test n'est pas une mention.")
    r = office.post("/app/debtors/D1/notes", data={"body": body})
    assert r.status_code == 303 and r.headers["Location"].endswith("#notes")
    note = look(lambda: db.session.scalars(select(DebtorNote)).one())
    assert note.body == body and note.author_id is not None
    mentioned = look(lambda: {u.email for u in db.session.scalars(select(CreditorUser).where(CreditorUser.id.in_(note.mentions)))})
    assert mentioned == {"marie.dupont@atelier.test", creditor.email}  # not jean (another creditor), not paul
    mails = look(lambda: list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "mention"))))
    assert [m.to_addr for m in mails] == ["marie.dupont@atelier.test"]
    event = events_of("note.added")[-1]
    assert event.data["mentions"] == sorted(mentioned) or set(event.data["mentions"]) == mentioned
    # Sent once, by the outbox like every message.
    assert outbox.send_pending().sent == 1
    assert outbox.send_pending().sent == 0
    received = smtp_server.handler.take()
    assert [r.rcpt_tos for r in received] == [["marie.dupont@atelier.test"]]
    mail = received[0]
    assert "Alpha SARL" in mail.subject and creditor.email in mail.subject
    assert "peux-tu vérifier l'avoir" in mail.text() and "http://portal.test/app/debtors/D1#notes" in mail.text()
    assert outsider.email not in "".join(r.rcpt_tos[0] for r in received)
    # On the page: newest first, author and time; the mention e-mail is not a message to the debtor.
    office.post("/app/debtors/D1/notes", data={"body": "Second note"})
    page = response_text(office.get("/app/debtors/D1"))
    assert page.index("Second note") < page.index("Appelé ce matin")
    sent = page[page.index('id="sent"'):]
    assert "mention" not in sent.split("</table>")[0].lower()


def test_empty_or_too_long_note_is_422_and_nothing_is_written(office):
    r = office.post("/app/debtors/D1/notes", data={"body": "   "})
    assert r.status_code == 422 and 'id="body-error"' in response_text(r)
    r = office.post("/app/debtors/D1/notes", data={"body": "@x " + "y" * 5000})
    assert r.status_code == 422
    assert "y" * 5000 in response_text(r)  # kept for the author to shorten
    assert look(lambda: db.session.scalars(select(DebtorNote)).all()) == []
    assert events_of("note.added") == []


# --- reading ---------------------------------------------------------------------------------------

def test_invoice_table_reads_status_in_words_promise_dispute_and_pdf(office, creditor, client, app):
    from portal.services import disputes, ledger, promises
    d1 = ledger.get_debtor(creditor.id, "D1")
    promises.make(d1.id, "F-1", (datetime.now(timezone.utc).date() + timedelta(days=10)).isoformat(), "500.00")
    disputes.open_dispute(d1.id, "F-2", reason="wrong_amount", comment="Le montant ne correspond pas.")
    page = response_text(office.get("/app/debtors/D1"))
    table = page[page.index('id="invoice-table"'):].split("</table>")[0]
    assert "à régler" in table and "open</" not in table  # the status in words, in French
    assert re.search(r'class="promise">avant le|class="promise">[^<]*500,00', table), table
    assert re.search(r'href="/app/disputes/\d+">contestée</a>', table)
    assert 'href="/app/invoice-pdf/F-1"' in table and 'href="/app/invoice-pdf/F-2"' in table
    r = office.get("/app/invoice-pdf/F-1")
    assert r.status_code == 200 and r.mimetype == "application/pdf" and r.data.startswith(b"%PDF")
    assert events_of("document.downloaded") == []  # the back office reading it is not the debtor's download


def test_messages_sent_and_portal_links_in_words_and_creditor_time(office, creditor, app):
    from portal.models import Creditor
    from portal.services import ledger, links
    c = db.session.get(Creditor, creditor.id)
    c.timezone = "Pacific/Noumea"  # UTC+11 all year: a UTC time shown as such would be off by 11 hours
    db.session.commit()
    d1 = ledger.get_debtor(creditor.id, "D1")
    links.issue(d1, issued_by="cli")
    msg = OutboxMessage(creditor_id=creditor.id, debtor_id=d1.id, kind="reminder", channel="email",
                        to_addr="alpha@example.com", subject="Rappel : facture F-1", text_body="t", html_body="<p>t</p>",
                        message_id_header="<m1@test>", status="sent",
                        created_at=datetime(2026, 11, 3, 22, 30, tzinfo=timezone.utc),
                        sent_at=datetime(2026, 11, 3, 22, 30, tzinfo=timezone.utc))
    db.session.add(msg)
    db.session.commit()
    page = response_text(office.get("/app/debtors/D1"))
    sent = page[page.index('id="sent"'):].split("</table>")[0]
    assert "4 nov. 2026 09:30" in sent  # 22:30 UTC is 09:30 the next day in Nouméa
    assert "Relance" in sent and "E-mail" in sent and "envoyé" in sent
    assert f'href="/app/outbox/{msg.id}"' in sent and "Rappel : facture F-1" in sent
    linked = page[page.index('id="link-table"'):].split("</table>")[0]
    assert "La ligne de commande" in linked and ">cli<" not in linked and " UTC" not in linked


# --- walls -------------------------------------------------------------------------------------------

def test_another_creditors_debtor_and_invoice_pdf_are_404(office, creditor, client, new_creditor):
    other = new_creditor("Other Corp")
    oapi = Api(client, other)
    oapi.put("/debtors/Z1", json={"name": "Secret"})
    oapi.put("/invoices/Z-1", json={"debtor_ref": "Z1", "issue_date": "2026-09-01", "due_date": "2026-10-01",
                                    "amount": "10.00", "currency": "EUR"})
    back_office_login(client, creditor)
    assert client.get("/app/invoice-pdf/Z-1").status_code == 404
    for path, data in [("/app/debtors/Z1/contacts", {"email": "x@y.fr", "language": "fr"}),
                       ("/app/debtors/Z1/owner", {"owner": ""}), ("/app/debtors/Z1/notes", {"body": "hello"})]:
        assert client.post(path, data=data).status_code == 404, path
    assert look(lambda: db.session.scalars(select(DebtorNote)).all()) == []
    assert debtor_row(other.id, "Z1").email is None


def test_the_forms_need_their_csrf_token(make_app, creditor, seeded):
    strict = make_app(WTF_CSRF_ENABLED=True)
    office = strict.test_client()
    token = csrf_token_in(office.get("/app/login").data)
    office.post("/app/login", data={"email": creditor.email, "password": creditor.password, "csrf_token": token})
    for path, data in [("/app/debtors/D1/contacts", {"email": "x@y.fr", "language": "fr"}),
                       ("/app/debtors/D1/owner", {"owner": ""}), ("/app/debtors/D1/notes", {"body": "hello"})]:
        assert office.post(path, data=data).status_code == 400, path
    page = office.get("/app/debtors/D1").data
    r = office.post("/app/debtors/D1/notes", data={"body": "hello", "csrf_token": csrf_token_in(page)})
    assert r.status_code == 303  # the page's own token works: the 400s were CSRF
    with strict.app_context():
        assert len(db.session.scalars(select(DebtorNote)).all()) == 1


def test_mentions_are_found_as_people_write_them(app, creditor, new_creditor):
    from portal.services import notes
    add_colleague(creditor.id, "Marie.Dupont@atelier.test")
    add_colleague(creditor.id, "paul@atelier.test")
    new_creditor("Other Corp", email="jean@other.test")

    def names(body):
        return [u.email for u in notes.mentioned(creditor.id, body)]

    assert names("Vu avec @marie.dupont.") == ["Marie.Dupont@atelier.test"]  # the full stop ends the sentence
    assert names("(@PAUL) et @marie.dupont, @paul encore") == ["Marie.Dupont@atelier.test", "paul@atelier.test"]
    assert names("écrire à paul@atelier.test ou marie.dupont@atelier.test") == []  # addresses, not mentions
    assert names("@jean @marie @pau @paul2") == []  # another creditor's user, and no partial names
