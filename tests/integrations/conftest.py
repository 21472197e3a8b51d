"""A real SMTP server on loopback (aiosmtpd) for the mail tests, and a small PDF to attach."""

import email
import email.policy
import io
import socket
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfWriter

from billing.documents import Document


class SMTPServer:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it accepts. It can be stopped
    (an outage) and started again on the same port."""

    def __init__(self, port: int):
        self.port = port
        self.envelopes = []
        self._controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, server_hostname="localhost")
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        """What arrived, parsed by the standard library (with the wire's CRLF line ends made \\n)."""
        return [email.message_from_bytes(e.original_content.replace(b"\r\n", b"\n"), policy=email.policy.default)
                for e in self.envelopes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server(app, monkeypatch) -> Iterator[SMTPServer]:
    """A running SMTP server on a free loopback port, with the app's SMTP settings pointed at it."""
    server = SMTPServer(_free_port())
    for key, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": server.port, "SMTP_USERNAME": "",
                       "SMTP_STARTTLS": False, "SMTP_SSL": False, "SMTP_TIMEOUT": 5,
                       "MAIL_FROM": "billing@clinic.test"}.items():
        monkeypatch.setitem(app.config, key, value)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def blank_pdf(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def pdf_document() -> Document:
    return Document(filename="INV-2026-000001.pdf", pdf=blank_pdf(2))
