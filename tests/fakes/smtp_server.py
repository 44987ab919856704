"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it accepts, can refuse on demand,
and can run in its own process so that tests can stop and start it like a real outage."""
from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)

    @property
    def subject(self) -> str:
        return self.message["Subject"]

    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()

    def attachments(self) -> list:
        return list(self.message.iter_attachments())


@dataclass
class Handler:
    messages: list[Received] = field(default_factory=list)
    #: recipient -> SMTP reply to give at RCPT (e.g. "451 4.3.0 try later", "550 5.1.1 no such user")
    refuse: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def take(self) -> list[Received]:
        with self.lock:
            out, self.messages[:] = list(self.messages), []
        return out


class SmtpServer:
    def __init__(self, port: int | None = None, login: tuple[str, str] | None = None):
        self.port = port or free_port()
        self.handler = Handler()
        self.controller = None
        #: (user, password) the server asks for (AUTH over plain TCP, as tests need)
        self.login = login

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login.decode(), auth_data.password.decode()) == self.login
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers the 535 itself

    def start(self):
        auth = {} if self.login is None else {"authenticator": self._authenticate, "auth_required": True,
                                              "auth_require_tls": False}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **auth)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
