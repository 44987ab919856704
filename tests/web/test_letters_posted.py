"""The print queue (issue 19, letters): each letter shows where it goes (or that it cannot go
yet) and its PDF; the creditor marks it posted, ordinary or registered with La Poste's number,
once; the record moves it to the posted list, lands on the debtor's timeline in words and stays
on the letter's page as the proof of sending. Through the test client on both engines, the
letter itself put in the queue by approving a formal notice, as a creditor does."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dunning_jobs import day as dunning_day
from portal.domain.calendar import today_for
from portal.extensions import db
from portal.models import Creditor, Debtor, DunningPlan, DunningStep, Event, OutboxMessage
from portal.services import Conflict, Invalid, NotFound, letters, plans
from support import assert_clean, back_office_login, csrf_token_in, flashes, look, response_text

ADDRESS = "Beta SAS\nService comptabilité\n12 rue des Lilas\n75011 Paris"


@pytest.fixture
def letter(api, app, creditor, client):
    """A registered formal notice to Beta SAS (postal address, no e-mail) in the print queue: its id."""
    row = db.session.get(Creditor, creditor.id)
    today = today_for(row)
    plans.ensure_default_plans(creditor.id)
    plan_ids = select(DunningPlan.id).where(DunningPlan.creditor_id == creditor.id)
    db.session.execute(update(DunningStep).where(DunningStep.plan_id.in_(plan_ids), DunningStep.offset_days > 0)
                       .values(requires_approval=True))
    db.session.commit()
    assert api.put("/debtors/B", json={"name": "Beta SAS", "language": "fr", "address": ADDRESS}).status_code == 201
    assert api.put("/invoices/F-B", json={
        "debtor_ref": "B", "issue_date": (today - timedelta(days=70)).isoformat(),
        "due_date": (today - timedelta(days=40)).isoformat(), "amount": "1200.00", "currency": "EUR"}).status_code == 201
    assert dunning_day.run(today, creditor_ids=[creditor.id]).awaiting_approval == 1
    debtor_id = db.session.scalar(select(Debtor.id).where(Debtor.creditor_id == creditor.id, Debtor.ref == "B"))
    db.session.rollback()
    bo = back_office_login(client, creditor)
    assert bo.post(f"/app/approvals/{debtor_id}/approve", data={f"delivery-{debtor_id}": "registered"},
                   follow_redirects=True).status_code == 200  # the approval's flash read
    message_id = look(lambda: db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.debtor_id == debtor_id)))
    assert message_id is not None
    return message_id


@pytest.fixture
def bo(client, creditor, letter):
    return client  # signed in by `letter`


def form(message_id, postage="registered", tracking="1A 123 456 7890 1", posted_on=None, today=None):
    p = f"letter-{message_id}-"
    return {p + "postage": postage, p + "tracking_number": tracking,
            p + "posted_on": (posted_on or today).isoformat()}


def posting(message_id):
    return look(lambda: db.session.execute(
        select(OutboxMessage.posted_at, OutboxMessage.posted_by, OutboxMessage.postage, OutboxMessage.tracking_number)
        .where(OutboxMessage.id == message_id)).one())


def posted_events():
    return look(lambda: [e.data for e in db.session.scalars(select(Event).where(Event.type == "letter.posted"))])


def test_the_queue_shows_the_address_the_pdf_and_the_form(bo, letter, today):
    r = bo.get("/app/outbox/letters")
    assert r.status_code == 200
    assert_clean(r, "/app/outbox/letters")
    page = response_text(r)
    assert f'id="letter-{letter}"' in page
    # The window's lines: the name once, then the address as recorded.
    assert '<p class="mono">Beta SAS<br>Service comptabilité<br>12 rue des Lilas<br>75011 Paris<br></p>' in page
    assert f'href="/app/outbox/{letter}/attachment"' in page
    assert f'action="/app/outbox/{letter}/posted#letter-{letter}"' in page
    # Registered offered first for a notice approved as registered; today by default, no later.
    assert f'name="letter-{letter}-postage" value="registered" checked>' in page
    assert f'value="{today.isoformat()}"' in page and f'max="{today.isoformat()}"' in page
    assert "Lettre recommandée avec accusé de réception" in page and "Lettre simple" in page
    assert "Aucun courrier marqué posté pour l'instant." in page
    # The outbox says how many letters wait, and links to them.
    outbox = response_text(bo.get("/app/outbox"))
    assert 'href="/app/outbox/letters">Courriers à poster <span class="badge warn">1</span>' in outbox


def test_no_postal_address_warns_and_offers_no_form(bo, creditor, letter):
    look(lambda: (db.session.execute(update(Debtor).where(Debtor.ref == "B").values(address=None)),
                  db.session.commit()))
    page = response_text(bo.get("/app/outbox/letters"))
    assert "Pas d'adresse postale\u00a0: ajoutez-en une avant de poster." in page
    assert 'href="/app/debtors/B#address"' in page
    assert f'action="/app/outbox/{letter}/posted#letter-{letter}"' not in page
    with pytest.raises(Invalid) as refused:
        letters.mark_posted(db.session.get(Creditor, creditor.id), letter, "ordinary", None, today_for(
            db.session.get(Creditor, creditor.id)), user="x@example.com")
    assert refused.value.field == "address"
    assert posting(letter)[0] is None and posted_events() == []


def test_registered_letter_marked_posted_once(bo, creditor, letter, today):
    r = bo.post(f"/app/outbox/{letter}/posted", data=form(letter, today=today))
    assert r.status_code == 303 and r.headers["Location"].endswith("/app/outbox/letters#posted")
    posted_at, by, postage, number = posting(letter)
    assert (by, postage, number) == (creditor.email, "registered", "1A12345678901")
    assert letters.posted_day(look(lambda: db.session.get(OutboxMessage, letter)), db.session.get(Creditor, creditor.id)) == today
    assert posted_events() == [{"user": creditor.email, "message_id": letter, "kind": "formal_notice",
                                "postage": "registered", "tracking_number": "1A12345678901",
                                "date": today.isoformat(), "address": ADDRESS.splitlines()}]
    page = response_text(bo.get("/app/outbox/letters"))
    assert flashes(page) == ["Lettre recommandée marquée postée (n°\u00a01A12345678901)\u00a0: elle figure sur "
                             "l'historique du client."]
    # It left the letters to post for the posted list: postage, number, day, who.
    assert f'id="letter-{letter}"' not in page and "Aucun courrier à poster." in page
    posted_list = page.split('id="posted"')[1]
    assert "1A12345678901" in posted_list and creditor.email in posted_list
    assert "Lettre recommandée avec accusé de réception" in posted_list
    # Twice: refused, nothing changed, one event.
    again = bo.post(f"/app/outbox/{letter}/posted", data=form(letter, "ordinary", "", today=today))
    assert again.status_code == 409
    assert flashes(response_text(again)) == ["Ce courrier était déjà marqué posté\u00a0: rien n'a changé."]
    assert posting(letter) == (posted_at, by, postage, number) and len(posted_events()) == 1
    # The letter's own page keeps the proof.
    proof = response_text(bo.get(f"/app/outbox/{letter}"))
    assert "1A12345678901" in proof and "Lettre recommandée avec accusé de réception" in proof
    assert '<span class="badge ok">posté</span>' in proof
    record = proof.split('id="posting"')[1]
    assert f"<dd>{long_day(today, 'fr')}</dd>" in record and f"<dd>{creditor.email}, <time" in record


def test_ordinary_letter_needs_no_number_and_an_earlier_day_is_kept(bo, creditor, letter, today):
    # The letter was written today: yesterday is refused, today taken.
    r = bo.post(f"/app/outbox/{letter}/posted", data=form(letter, "ordinary", "", today - timedelta(days=1)))
    assert r.status_code == 422
    assert 'id="letter-{}-posted_on-error">La lettre a été écrite après ce jour.'.format(letter) in response_text(r)
    r = bo.post(f"/app/outbox/{letter}/posted", data=form(letter, "ordinary", "  ", today=today))
    assert r.status_code == 303
    assert posting(letter)[1:] == (creditor.email, "ordinary", None)
    assert [e["postage"] for e in posted_events()] == ["ordinary"]


@pytest.mark.parametrize("postage, tracking, day, field, message", [
    ("registered", "", 0, "tracking_number", "Une lettre recommandée a besoin de son numéro de suivi."),
    ("registered", "1A-12", 0, "tracking_number", "Un numéro de suivi compte 8 à 20 lettres et chiffres"),
    ("registered", "RR 123 456 789 FR / 2", 0, "tracking_number", "Un numéro de suivi compte 8 à 20 lettres et chiffres"),
    ("ordinary", "", 1, "posted_on", "Le jour de dépôt ne peut pas être dans le futur."),
    ("express", "", 0, "postage", "Choisissez lettre simple ou recommandée."),
])
def test_refused_with_the_field_named(bo, letter, today, postage, tracking, day, field, message):
    r = bo.post(f"/app/outbox/{letter}/posted", data=form(letter, postage, tracking, today + timedelta(days=day)))
    assert r.status_code == 422
    page = response_text(r)
    assert f'id="letter-{letter}-{field}-error">{message}' in page
    if field != "postage":
        assert f'aria-invalid="true" aria-describedby="letter-{letter}-{field}-error"' in page or \
            f'aria-describedby="letter-{letter}-{field}-hint letter-{letter}-{field}-error" aria-invalid="true"' in page
    assert f'value="{tracking}"' in page or not tracking  # what was typed stays
    assert posting(letter)[0] is None and posted_events() == []


def test_registered_numbers_are_normalised(app):
    assert letters.clean_tracking(" rr 123 456 789 fr ") == "RR123456789FR"
    assert letters.clean_tracking("1A 123 456 7890 1") == "1A12345678901"
    assert letters.clean_tracking("   ") is None
    for bad in ("1A12345", "1A1234567890123456789", "1A 123 456 7890 1é", "RR123456789FR!"):
        with pytest.raises(Invalid):
            letters.clean_tracking(bad)


def test_another_creditors_letter_is_not_found(make_app, new_creditor, creditor, letter, today):
    other = new_creditor("Other")
    other_client = back_office_login(make_app().test_client(), other)
    assert other_client.post(f"/app/outbox/{letter}/posted", data=form(letter, today=today)).status_code == 404
    assert other_client.get("/app/outbox/letters").status_code == 200
    assert "Beta SAS" not in response_text(other_client.get("/app/outbox/letters"))
    with pytest.raises(NotFound):
        letters.mark_posted(db.session.get(Creditor, other.id), letter, "ordinary", None, today, user=other.email)
    assert posting(letter)[0] is None and posted_events() == []


def test_concurrent_marks_write_one_event(make_app, creditor, letter, today, engine_name):
    """Two users mark the same letter at the same moment: the conditional UPDATE lets one through."""
    apps = [make_app(), make_app()]
    barrier, outcomes = threading.Barrier(2, timeout=120), []

    def mark(app, who):
        with app.app_context():
            row = db.session.get(Creditor, creditor.id)
            db.session.rollback()
            barrier.wait()
            try:
                letters.mark_posted(row, letter, "registered", "RR123456789FR", today, user=who)
                outcomes.append("posted")
            except Conflict:
                outcomes.append("conflict")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=mark, args=(a, f"user{i}@example.com")) for i, a in enumerate(apps)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "posted"]
    assert len(posted_events()) == 1


@pytest.mark.parametrize("language, postage, tracking, said", [
    ("fr", "registered", "1A 123 456 7890 1", "Lettre recommandée avec AR postée le {d} (n°\u00a01A12345678901)"),
    ("fr", "ordinary", "", "Lettre postée le {d}"),
    ("en", "registered", "1A 123 456 7890 1", "Registered letter posted on {d} (no. 1A12345678901)"),
    ("en", "ordinary", "", "Letter posted on {d}"),
])
def test_the_timeline_says_it_in_words(bo, creditor, letter, today, language, postage, tracking, said):
    look(lambda: (db.session.execute(update(Creditor).where(Creditor.id == creditor.id).values(language=language)),
                  db.session.commit()))
    assert bo.post(f"/app/outbox/{letter}/posted", data=form(letter, postage, tracking, today)).status_code == 303
    day = long_day(today, language)
    for path in ("/app/debtors/B", "/app/activity"):
        page = response_text(bo.get(path))
        assert said.format(d=day) + " — <a href=\"/app/debtors/B\">" in page, path  # the sentence, then whose


def long_day(day, language):
    """"6 décembre 2026", "1er décembre 2026", "6 December 2026", written out here, not by Babel."""
    if language == "fr":
        return f"{'1er' if day.day == 1 else day.day} {FR_MONTHS[day.month - 1]} {day.year}"
    return f"{day.day} {EN_MONTHS[day.month - 1]} {day.year}"


FR_MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
             "novembre", "décembre"]
EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December"]


def test_marking_posted_needs_the_csrf_token(make_app, creditor, letter, today):
    c = make_app(WTF_CSRF_ENABLED=True).test_client()
    token = csrf_token_in(c.get("/app/login").data)
    c.post("/app/login", data={"email": creditor.email, "password": creditor.password, "csrf_token": token})
    assert c.post(f"/app/outbox/{letter}/posted", data=form(letter, today=today)).status_code == 400
    assert posting(letter)[0] is None
    page = c.get("/app/outbox/letters").data
    assert f'name="letter-{letter}-csrf_token"'.encode() in page
    data = {**form(letter, today=today), f"letter-{letter}-csrf_token": csrf_token_in(page)}
    assert c.post(f"/app/outbox/{letter}/posted", data=data).status_code == 303
    assert posting(letter)[2] == "registered"
