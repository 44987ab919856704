"""Languages: the portal speaks the debtor's language, the back office the creditor's, error pages
the browser's; the French catalogue is complete and its compiled .mo matches the .po.

Page tests make their requests through a second app built with `make_app()`: the `app` fixture
holds an application context for the whole test, and Flask reuses that context (so `g`, where
Flask-Babel caches the locale and translations) for every request of its own test client. A
second app gets a fresh context per request, as in production.
"""
from __future__ import annotations

import re
import shlex
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from support import Api, portal_login

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "portal" / "translations"
FR_PO = TRANSLATIONS / "fr" / "LC_MESSAGES" / "messages.po"
FR_MO = TRANSLATIONS / "fr" / "LC_MESSAGES" / "messages.mo"

NNBSP, NBSP = "\u202f", "\u00a0"  # Babel's French group separator, and the space before "€"
FR_1200 = f"1{NNBSP}200,00{NBSP}€"
EN_1200 = "€1,200.00"


def _squash(text: str) -> str:
    # ASCII white space only: the no-break spaces inside amounts are part of what is checked.
    return re.sub(r"[ \t\r\n\f]+", " ", text)


class Page(HTMLParser):
    """What a screen reader would get from a page: its language, its text, its links and buttons
    with their accessible names (aria-label, else the text inside)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.lang = None
        self.title = ""
        self.controls: list[dict] = []  # {"tag", "href", "name"}
        self._text: list[str] = []
        self._open: list[dict] = []
        self._in_title = False
        self.feed(html)
        self.close()
        self.text = _squash("".join(self._text))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.lang = attrs.get("lang")
        elif tag == "title":
            self._in_title = True
        elif tag in ("a", "button"):
            self._open.append({"tag": tag, "href": attrs.get("href"), "label": attrs.get("aria-label"),
                               "inner": []})
        for name in ("aria-label", "data-label"):
            if attrs.get(name):
                self._text.append(f" {attrs[name]} ")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag in ("a", "button") and self._open and self._open[-1]["tag"] == tag:
            c = self._open.pop()
            inner = _squash("".join(c.pop("inner"))).strip()
            self.controls.append({"tag": tag, "href": c["href"], "name": (c.pop("label") or inner).strip()})
        elif tag in ("p", "div", "li", "td", "th", "h1", "h2", "dt", "dd", "tr"):
            self._text.append(" ")

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        self._text.append(data)
        for c in self._open:
            c["inner"].append(data)

    def links(self, containing: str) -> list[dict]:
        return [c for c in self.controls if c["tag"] == "a" and containing in c["name"]]


def page(response, status: int = 200) -> Page:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return Page(response.get_data(as_text=True))


@pytest.fixture
def web(make_app, app):
    """An app whose test client gets a fresh application context per request."""
    return make_app()


def debtor_client(web, creditor, ref, **headers):
    client = web.test_client()
    if headers:
        client.environ_base.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    portal_login(client, web, ref, creditor.id)
    return client


# --- Debtor portal ---------------------------------------------------------------------------

def test_french_debtor_portal_is_in_french(web, seeded, creditor):
    # The debtor's language wins over the browser's.
    client = debtor_client(web, creditor, "D1", **{"Accept-Language": "en-GB,en;q=0.9"})
    home = page(client.get("/portal/"))

    assert home.lang == "fr"
    assert home.title == "Votre compte chez Atelier Test"
    for text in ("Factures à régler", "Relevé de compte", "Total dû", "dont échu", "Jours de retard",
                 "Échéance", "Montant", "Solde", "En retard", "Payer par virement", "Bénéficiaire",
                 "Référence à indiquer", "Historique", "Facture émise", "Se déconnecter",
                 "Aller au contenu"):
        assert text in home.text, text
    for english in ("Open invoices", "Statement", "Total due", "Overdue", "Sign out", "Invoice"):
        assert english not in home.text, english
    # Amounts and dates in French: narrow no-break space between thousands, comma, € after.
    assert FR_1200 in home.text and f"300,50{NBSP}€" in home.text
    assert f"1{NNBSP}500,50{NBSP}€" in home.text  # total due
    assert "1 oct. 2026" in home.text and EN_1200 not in home.text

    for number in ("F-1", "F-2"):
        pdf = [c for c in home.links("PDF") if c["href"] == f"/portal/invoices/{number}.pdf"]
        assert len(pdf) == 1 and pdf[0]["name"] == f"Facture {number} (PDF)"
    statement_links = home.links("Relevé de compte")
    assert [c["href"] for c in statement_links] == ["/portal/statement"]

    statement = page(client.get("/portal/statement"))
    assert statement.lang == "fr" and statement.title == "Relevé de compte"
    for text in ("Facture F-1", "Débit", "Crédit", "Solde final", "Retour à votre compte", FR_1200):
        assert text in statement.text, text
    assert "Statement" not in statement.text


def test_english_debtor_portal_is_in_english(web, seeded, creditor):
    r = seeded.put("/invoices/F-5", json={"debtor_ref": "D2", "issue_date": "2026-11-02",
                                          "due_date": "2026-12-02", "amount": "1200.00", "currency": "EUR"})
    assert r.status_code == 201, r.json
    client = debtor_client(web, creditor, "D2", **{"Accept-Language": "fr-FR,fr;q=0.9"})
    home = page(client.get("/portal/"))

    assert home.lang == "en"
    assert home.title == "Your account with Atelier Test"
    for text in ("Open invoices", "Statement of account", "Total due", "of which overdue", "Days overdue",
                 "Pay by bank transfer", "Reference to quote", "Sign out", "Skip to content"):
        assert text in home.text, text
    for french in ("Factures", "Relevé", "Total dû", "Se déconnecter", "Échéance"):
        assert french not in home.text, french
    assert EN_1200 in home.text and "€5,000.00" in home.text and "€99.99" in home.text
    assert FR_1200 not in home.text
    assert "Nov 14, 2026" in home.text

    # Contract, section 5: a link containing "PDF" per document, one containing "Statement".
    for number in ("F-3", "F-4", "F-5"):
        pdf = [c for c in home.links("PDF") if c["href"] == f"/portal/invoices/{number}.pdf"]
        assert len(pdf) == 1 and pdf[0]["name"] == f"Invoice {number} (PDF)"
    statement_links = home.links("Statement")
    assert statement_links and {c["href"] for c in statement_links} == {"/portal/statement"}

    statement = page(client.get(statement_links[0]["href"]))
    assert statement.lang == "en" and statement.title == "Statement of account"
    for text in ("Invoice F-5", "Debit", "Credit", "Closing balance", "Back to your account", EN_1200):
        assert text in statement.text, text


def test_signed_out_page_is_in_the_debtors_language(web, seeded, creditor):
    fr = debtor_client(web, creditor, "D1", **{"Accept-Language": "en"})
    assert "Vous êtes déconnecté" in page(fr.post("/portal/logout")).text
    en = debtor_client(web, creditor, "D2", **{"Accept-Language": "fr"})
    assert "You are signed out" in page(en.post("/portal/logout")).text


def test_missing_document_page_is_in_the_debtors_language(web, seeded, creditor):
    en = debtor_client(web, creditor, "D2", **{"Accept-Language": "fr"})
    shown = page(en.get("/portal/invoices/F-1.pdf"), 404)  # another debtor's invoice
    assert "Page not found" in shown.text and shown.lang == "en"


# --- Error pages: no debtor known, so the browser's language --------------------------------

ERROR_TEXTS = {
    "/l/not-a-valid-token": (404, {"en": "This link cannot be used", "fr": "Ce lien ne peut pas être utilisé"}),
    "/portal/": (401, {"en": "Your session has ended", "fr": "Votre session a expiré"}),
    "/portal/statement": (401, {"en": "Your session has ended", "fr": "Votre session a expiré"}),
}


@pytest.mark.parametrize("path", sorted(ERROR_TEXTS))
@pytest.mark.parametrize("accept, expected", [("en-GB,en;q=0.9,fr;q=0.5", "en"), ("en", "en"),
                                              ("fr-FR,fr;q=0.9,en;q=0.8", "fr"), ("fr", "fr"),
                                              ("de-DE,de;q=0.9", "fr"), (None, "fr")])
def test_error_pages_follow_accept_language(web, path, accept, expected):
    status, texts = ERROR_TEXTS[path]
    headers = {"Accept-Language": accept} if accept else {}
    shown = page(web.test_client().get(path, headers=headers), status)
    assert texts[expected] in shown.text
    other = "fr" if expected == "en" else "en"
    assert texts[other] not in shown.text


@pytest.mark.parametrize("accept, expected", [("en", "en"), ("fr", "fr"), (None, "fr")])
def test_error_page_lang_attribute_follows_accept_language(web, accept, expected):
    headers = {"Accept-Language": accept} if accept else {}
    shown = page(web.test_client().get("/l/not-a-valid-token", headers=headers), 404)
    assert shown.lang == expected
    login = page(web.test_client().get("/app/login", headers=headers))
    assert login.lang == expected


def test_unknown_url_page_follows_accept_language(web):
    shown = page(web.test_client().get("/no-such-page", headers={"Accept-Language": "fr"}), 404)
    assert "Page introuvable" in shown.text and shown.lang == "fr"


# --- Back office: the creditor's language ----------------------------------------------------

def back_office(web, creditor, accept):
    client = web.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept
    r = client.post("/app/login", data={"email": creditor.email, "password": creditor.password})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    return client


def test_login_page_follows_accept_language(web):
    en = page(web.test_client().get("/app/login", headers={"Accept-Language": "en"}))
    assert "Sign in" in en.text and "Password" in en.text
    fr = page(web.test_client().get("/app/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"}))
    assert "Se connecter" in fr.text and "Mot de passe" in fr.text and "Password" not in fr.text


def test_back_office_in_french_for_a_french_creditor(web, seeded, creditor):
    client = back_office(web, creditor, "en-GB,en;q=0.9")
    debtors = page(client.get("/app/debtors"))
    assert debtors.lang == "fr"
    for text in ("Clients", "Factures à régler", "Solde", "En retard", "Activité", "Clés d'API",
                 "Se déconnecter", "Rechercher", f"1{NNBSP}500,50{NBSP}€"):
        assert text in debtors.text, text
    assert "Sign out" not in debtors.text and "Debtors" not in debtors.text

    # A message from Python code (flash) is translated too.
    shown = page(client.post("/app/debtors/D1/links", follow_redirects=True))
    assert "Nouveau lien d'accès au portail (copiez-le maintenant)" in shown.text
    assert "Liens d'accès au portail" in shown.text and "Créer un lien d'accès" in shown.text

    invoice = page(client.get("/app/invoices/F-1"))
    assert "Facture F-1" in invoice.text and FR_1200 in invoice.text and "j de retard" in invoice.text


def test_back_office_in_english_for_an_english_creditor(web, client, new_creditor):
    acme = new_creditor("Acme Ltd", language="en")
    api = Api(client, acme)
    assert api.put("/debtors/X1", json={"name": "Gamma SAS", "email": "gamma@example.com",
                                        "language": "fr"}).status_code in (200, 201)
    assert api.put("/invoices/A-1", json={"debtor_ref": "X1", "issue_date": "2026-09-01",
                                          "due_date": "2026-10-01", "amount": "1200.00",
                                          "currency": "EUR"}).status_code == 201

    bo = back_office(web, acme, "fr-FR,fr;q=0.9")
    debtors = page(bo.get("/app/debtors"))
    assert debtors.lang == "en"
    for text in ("Debtors", "Open invoices", "Balance", "Overdue", "Activity", "API keys", "Sign out", EN_1200):
        assert text in debtors.text, text
    assert "Clients" not in debtors.text and "Se déconnecter" not in debtors.text
    invoice = page(bo.get("/app/invoices/A-1"))
    assert "Invoice A-1" in invoice.text and "days overdue" in invoice.text

    # The debtor's portal stays in the debtor's language, whatever the creditor's.
    portal = page(debtor_client(web, acme, "X1").get("/portal/"))
    assert portal.lang == "fr" and "Factures à régler" in portal.text and FR_1200 in portal.text


# --- The catalogue ---------------------------------------------------------------------------

def _messages(catalog) -> dict:
    return {(m.context, m.id if isinstance(m.id, str) else tuple(m.id)):
            m.string if isinstance(m.string, str) else tuple(m.string)
            for m in catalog if m.id}


def _read_po(path: Path):
    with open(path, "rb") as f:
        return read_po(f, locale="fr")


def test_compiled_catalogue_matches_the_po(tmp_path):
    """The committed .mo is what `pybabel compile` makes of the committed .po (run `make translations`)."""
    po = _read_po(FR_PO)
    assert not [m.id for m in po if m.id and m.fuzzy], "fuzzy entries are left out of the .mo"
    fresh = tmp_path / "messages.mo"
    with open(fresh, "wb") as f:
        write_mo(f, po)
    with open(fresh, "rb") as f:
        expected = _messages(read_mo(f))
    with open(FR_MO, "rb") as f:
        committed = read_mo(f)
    assert _messages(committed) == expected, "messages.mo is stale: run `make translations`"
    assert committed.plural_forms == po.plural_forms


def _extract(tmp_path, monkeypatch):
    """Run the Makefile's own `pybabel extract` line, writing to a temporary file."""
    line = next(l for l in (ROOT / "Makefile").read_text().splitlines() if "pybabel extract" in l)
    args = shlex.split(line.strip())
    args = args[next(i for i, a in enumerate(args) if a.endswith("pybabel")) + 1:]
    out = tmp_path / "messages.pot"
    args[args.index("-o") + 1] = str(out)
    monkeypatch.chdir(ROOT)
    CommandLineInterface().run(["pybabel", "-q", *args])
    with open(out, "rb") as f:
        return read_po(f)


def test_every_extracted_message_has_a_french_translation(tmp_path, monkeypatch):
    extracted = _extract(tmp_path, monkeypatch)
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in extracted if m.id}
    # Both extractors found something (a babel.cfg whose paths match nothing extracts nothing).
    assert {"Open invoices", "Statement of account", "Link revoked.", "Wrong e-mail or password."} <= ids

    po = _read_po(FR_PO)
    missing, empty = [], []
    for m in extracted:
        if not m.id:
            continue
        translated = po.get(m.id, context=m.context)
        if translated is None or translated.fuzzy:
            missing.append(m.id)
        elif not all(isinstance(s, str) and s.strip() for s in
                     (translated.string if isinstance(translated.string, (list, tuple)) else [translated.string])):
            empty.append(m.id)
    assert not missing, f"not in the French catalogue (run `make translations`): {missing}"
    assert not empty, f"no French translation: {empty}"


def test_french_translations_keep_their_placeholders():
    po = _read_po(FR_PO)
    problems = [(m.id, [str(e) for e in errors]) for m, errors in po.check()]
    assert not problems
    for m in po:
        if m.id and isinstance(m.id, str):
            assert sorted(re.findall(r"%\((\w+)\)s", m.id)) == sorted(re.findall(r"%\((\w+)\)s", m.string)), m.id


@pytest.mark.parametrize("accept, expected", [("en", "Please sign in to see this page."),
                                              ("fr", "Connectez-vous pour accéder à cette page.")])
def test_sign_in_request_speaks_the_browser_language(web, accept, expected):
    """A back-office page opened signed out sends to the sign-in page with a notice in the page's
    language (flask-login's own notice was English on a French page)."""
    client = web.test_client()
    response = client.get("/app/bank", headers={"Accept-Language": accept}, follow_redirects=True)
    shown = page(response)
    assert expected in shown.text and "Please log in" not in shown.text
