"""Issue 15, items 5 to 7: a redirect target with a control character is refused (not a 500);
signing out ends the session on the server, so a copied cookie is worth nothing afterwards (back
office: logout and a new password; portal: logout and a revoked link); and no log line carries a
portal token or short code, in the app's log, `flask serve` and gunicorn, read from real servers."""
from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest
from sqlalchemy import select

from fakes.cli_process import ROOT, app_env, flask, stop
from fakes.private_servers import free_port
from portal import errors, security
from portal.extensions import db
from portal.models import Event
from portal.services import creditor_users, ledger, links
from support import back_office_login, portal_login

# --- item 5: redirect targets ------------------------------------------------------------------

CONTROL_TARGETS = ["/app/\r\nSet-Cookie: stolen=1", "/app/activity\n", "/app/\rx", "/app/\x85", "/app/\u2028",
                   "/app/\u202eevil", "/app/\u200b", "/\r\n/evil.example"]
#: characters no column can store: the input guard refuses the whole request before the sign-in
UNSTORABLE_TARGETS = ["/app/\x00", "/app/\x7f"]


@pytest.mark.parametrize("target", CONTROL_TARGETS)
def test_login_next_with_a_control_character_lands_on_the_default_page(client, creditor, target):
    r = client.post(f"/app/login?next={quote(target, safe='')}",
                    data={"email": creditor.email, "password": creditor.password})
    assert r.status_code == 302, r.status_code  # was a 500 for CR/LF, the user already signed in
    assert r.headers["Location"] == "/app/", r.headers["Location"]
    assert "stolen" not in str(r.headers)
    assert client.get("/app/").status_code == 200


@pytest.mark.parametrize("target", UNSTORABLE_TARGETS)
def test_login_next_with_an_unstorable_character_is_refused_before_signing_in(client, creditor, target):
    r = client.post(f"/app/login?next={quote(target, safe='')}",
                    data={"email": creditor.email, "password": creditor.password})
    assert r.status_code == 422 and 'data-field="next"' in r.get_data(as_text=True)
    assert client.get("/app/").status_code == 302  # nobody signed in


@pytest.mark.parametrize("target, expected", [
    ("/app/debtors/D1?q=a%0Db", "/app/debtors/D1?q=a%0Db"),  # encoded, a control character is only text
    ("/app/activity", "/app/activity"), ("", "/"), (None, "/"), ("/a\\b", "/"), ("/a b", "/"), ("//x", "/"),
    ("/" + "a" * 3000, "/"), ("/\u00e9t\u00e9", "/\u00e9t\u00e9"),
])
def test_the_one_check_of_a_redirect_target(target, expected):
    assert security.safe_redirect_target(target, "/") == expected


# --- item 6: back-office sessions --------------------------------------------------------------

def copy_session(source, make_app):
    """Another browser holding a copy of `source`'s session cookie (what a thief would hold)."""
    thief = make_app().test_client()
    cookie = source.get_cookie("session")
    assert cookie is not None
    thief.set_cookie("session", cookie.value)
    return thief


def test_back_office_logout_ends_every_copy_of_the_session(client, make_app, creditor):
    back_office_login(client, creditor)
    thief = copy_session(client, make_app)
    assert thief.get("/app/").status_code == 200
    assert client.post("/app/logout").status_code == 302
    assert client.get("/app/").status_code == 302
    r = thief.get("/app/")
    assert r.status_code == 302 and "/app/login" in r.headers["Location"]  # was 200: the copy outlived logout
    db.session.expire_all()
    assert db.session.scalars(select(Event.type).where(Event.type.like("user.%")).order_by(Event.id)).all() == [
        "user.logged_in", "user.logged_out"]
    back_office_login(client, creditor)  # signing in again works, with a new session
    assert client.get("/app/").status_code == 200
    assert thief.get("/app/").status_code == 302


def test_a_new_password_signs_out_every_session(client, make_app, app, creditor):
    back_office_login(client, creditor)
    other = back_office_login(make_app().test_client(), creditor)
    result = app.test_cli_runner().invoke(args=["creditor", "set-password", "--email", creditor.email.upper(),
                                                "--password", "a brand new secret"])
    assert result.exit_code == 0, result.output
    for browser in (client, other):
        assert browser.get("/app/").status_code == 302
    r = client.post("/app/login", data={"email": creditor.email, "password": creditor.password})
    assert r.status_code == 401
    r = client.post("/app/login", data={"email": creditor.email, "password": "a brand new secret"})
    assert r.status_code == 302 and client.get("/app/").status_code == 200
    refused = app.test_cli_runner().invoke(args=["creditor", "set-password", "--email", creditor.email,
                                                 "--password", "short"])
    assert refused.exit_code != 0 and "8 characters" in refused.output
    assert client.get("/app/").status_code == 200  # a refused change ends nothing


def test_a_session_cookie_from_before_the_generations_is_refused(client, make_app, app, creditor):
    """A cookie naming the user by its bare id (or an old generation) signs in no one."""
    back_office_login(client, creditor)
    with client.session_transaction() as s:
        user_id, generation = s["_user_id"].split(":")
        s["_user_id"] = user_id
    assert client.get("/app/").status_code == 302
    with client.session_transaction() as s:
        s["_user_id"] = f"{user_id}:{int(generation) + 1}"
    assert client.get("/app/").status_code == 302
    assert creditor_users.for_session("x:1") is None and creditor_users.for_session("1:" + "9" * 50) is None


# --- item 6: portal sessions -------------------------------------------------------------------

def test_portal_logout_ends_every_copy_of_the_session(client, make_app, app, seeded, creditor):
    url = portal_login(client, app, "D1", creditor.id)
    thief = copy_session(client, make_app)
    assert thief.get("/portal/").status_code == 200
    assert client.post("/portal/logout").status_code == 200
    assert client.get("/portal/").status_code == 401
    assert thief.get("/portal/").status_code == 401  # was 200: the copy outlived logout
    assert thief.get("/portal/invoices/F-1.pdf").status_code == 401
    # The link itself still opens a new session (it was not revoked), and only that one works.
    assert client.get(url.replace("http://portal.test", "")).status_code == 303
    assert client.get("/portal/").status_code == 200
    assert thief.get("/portal/").status_code == 401


def test_portal_logout_ends_that_session_only(client, make_app, app, seeded, creditor):
    """Two browsers that each opened the same link: one signing out leaves the other in."""
    url = portal_login(client, app, "D1", creditor.id).replace("http://portal.test", "")
    phone = make_app().test_client()
    assert phone.get(url).status_code == 303
    client.post("/portal/logout")
    assert phone.get("/portal/").status_code == 200


def test_a_revoked_link_ends_every_copy_of_its_sessions(client, make_app, app, seeded, creditor):
    portal_login(client, app, "D1", creditor.id)
    thief = copy_session(client, make_app)
    with client.session_transaction() as s:
        link_id = s["portal"]["link"]
    links.revoke(creditor.id, link_id)
    assert client.get("/portal/").status_code == 401
    assert thief.get("/portal/").status_code == 401


def test_a_portal_session_without_its_server_row_is_refused(client, app, seeded, creditor):
    """A cookie from before the server kept portal sessions, or naming another debtor's session."""
    portal_login(client, app, "D2", creditor.id)
    with client.session_transaction() as s:
        d2_session = s["portal"]["s"]
    portal_login(client, app, "D1", creditor.id)
    with client.session_transaction() as s:
        state = s["portal"]
        state["s"] = d2_session  # D1's cookie naming D2's live session
        s["portal"] = state
    assert client.get("/portal/").status_code == 401
    portal_login(client, app, "D1", creditor.id)
    with client.session_transaction() as s:
        state = s["portal"]
        del state["s"]
        s["portal"] = state
    assert client.get("/portal/").status_code == 401


# --- item 7: no token in any log line ----------------------------------------------------------

HASHED = re.compile(r"/l/~([0-9a-f]{12})\b")


@pytest.fixture
def portal_links(make_app, seeded, creditor):
    """A signed token and a short code for D1, issued with the servers' SECRET_KEY (test-secret-key),
    and the hash a log line must show for each."""
    app = make_app()
    with app.app_context():
        issued = links.issue(ledger.get_debtor(creditor.id, "D1"), issued_by="creditor", short=True)
        token = issued.url.rsplit("/l/", 1)[1]
        code = issued.short_url.rsplit("/l/", 1)[1]
        return {"token": token, "code": code, "hashes": {security.link_hash(token), security.link_hash(code)}}


def fetch(base: str, path: str) -> int:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    try:
        return urllib.request.build_opener(NoRedirect).open(base + path, timeout=20).status
    except urllib.error.HTTPError as e:
        return e.code


def wait_until_up(base: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{proc.communicate()}")
        try:
            if urllib.request.urlopen(base + "/healthz", timeout=2).status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server not up")


def assert_no_token_in(log: str, portal_links) -> None:
    assert portal_links["token"] not in log and portal_links["code"] not in log, log[-3000:]
    assert portal_links["code"].upper() not in log
    assert set(HASHED.findall(log)) >= portal_links["hashes"], log[-3000:]


def open_links_on(base: str, portal_links) -> None:
    assert fetch(base, f"/l/{portal_links['token']}") == 303
    assert fetch(base, f"/l/{portal_links['code']}") == 303
    assert fetch(base, f"/l/{portal_links['code'].upper()}?x=1") == 303
    assert fetch(base, f"/l/{portal_links['token']}x") == 404  # a refused one is not logged either


def test_flask_serve_access_log_carries_no_token(database_url, portal_links):
    port = free_port()
    proc = flask("serve", "--port", str(port), env=app_env(database_url, CELERY_BROKER_URL="memory://"))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, proc)
        open_links_on(base, portal_links)
    finally:
        stop(proc)
    out, err = proc.communicate()
    log = out + err
    assert "GET /l/~" in log, log[-3000:]  # the access log is there, hashed
    assert_no_token_in(log, portal_links)


def test_gunicorn_logs_carry_no_token(database_url, portal_links, tmp_path):
    """gunicorn started as the README starts it (from the checkout, which holds gunicorn.conf.py),
    with its access log on."""
    port = free_port()
    access, error = tmp_path / "access.log", tmp_path / "error.log"
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}",
                             "--access-logfile", str(access), "--error-logfile", str(error),
                             "--access-logformat", '%(h)s "%(r)s" %(s)s "%(f)s" %(U)s?%(q)s', "app:app"],
                            cwd=ROOT, env=app_env(database_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, proc)
        open_links_on(base, portal_links)
        request = urllib.request.Request(base + "/healthz", headers={"Referer": f"{base}/l/{portal_links['token']}"})
        assert urllib.request.urlopen(request, timeout=20).status == 200
    finally:
        stop(proc)
    out, err = proc.communicate()
    log = access.read_text() + error.read_text() + out + err
    assert "GET /l/~" in log, log[-3000:]
    assert_no_token_in(log, portal_links)


def test_the_apps_own_log_carries_no_token(app, portal_links, caplog, monkeypatch):
    """The app's error log names the request's path (errors.unexpected_error): hashed there too,
    traceback included."""
    token = portal_links["token"]
    # Running the migrations in this process (alembic's fileConfig) disabled the loggers that existed.
    monkeypatch.setattr(app.logger, "disabled", False)
    with caplog.at_level(logging.INFO), app.test_request_context(f"/l/{token}"):
        try:
            raise RuntimeError(f"cannot open /l/{token}")
        except RuntimeError as e:
            errors.unexpected_error(e)
        app.logger.warning("link sent: http://portal.test/l/%s", portal_links["code"])
    log = caplog.text
    assert "unexpected error on GET /l/~" in log and "RuntimeError: cannot open /l/~" in log, log
    assert_no_token_in(log, portal_links)
