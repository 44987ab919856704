"""A real SMTP server (aiosmtpd, in a thread of the test process) that can be slow and can hold
a client at a chosen point of the conversation, so that a test can kill the client there.

Phases, in the order a client meets them for one message:
  "rcpt"     the server has RCPT TO and has not answered it yet
  "data"     the client sent DATA and waits for 354 (nothing of the message sent yet)
  "accepted" the server has the whole message (final "." received and stored) and has not
             answered 250 yet: the client has done everything it does before the final dot

`hold(phase, n)` makes the n-th occurrence (1-based, counted since the server started) of that
phase wait until `release()`; `held` is set when a client is being held there.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from .smtp_server import Handler, Received, SmtpServer

PHASES = ("rcpt", "data", "accepted")


@dataclass
class SlowHandler(Handler):
    #: seconds to wait in each phase, for every message
    delay: float = 0.0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PHASES, 0))
    hold_at: tuple[str, int] | None = None
    held: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def hold(self, phase: str, n: int) -> None:
        assert phase in PHASES
        self.held.clear()
        self.released.clear()
        self.hold_at = (phase, n)

    def release(self) -> None:
        self.hold_at = None
        self.released.set()

    async def phase(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1
            holding = self.hold_at == (name, self.counts[name])
        if self.delay:
            await asyncio.sleep(self.delay)
        if holding:
            self.held.set()
            while not self.released.is_set():
                await asyncio.sleep(0.01)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await self.phase("rcpt")
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:  # stored first: the server has the message whatever happens to the client now
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        await self.phase("accepted")
        return "250 Message accepted for delivery"


class _SlowSMTP(SMTP):
    async def smtp_DATA(self, arg: str) -> None:
        if self.envelope is not None and self.envelope.rcpt_tos and not arg:
            await self.event_handler.phase("data")  # before the 354 go-ahead
        await super().smtp_DATA(arg)


class _Controller(Controller):
    def factory(self):
        return _SlowSMTP(self.handler, **self.SMTP_kwargs)


class SlowSmtpServer(SmtpServer):
    def __init__(self, port: int | None = None, delay: float = 0.0):
        super().__init__(port)
        self.handler = SlowHandler(delay=delay)

    def start(self):
        self.controller = _Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        self.handler.release()
        super().stop()
