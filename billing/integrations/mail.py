"""Sending email over SMTP with smtplib, configured by the SMTP_* settings and MAIL_FROM (README:
Configuration). Nothing here touches the database: billing.services.outbox decides what to send, when,
and what to do when sending fails.
"""

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr

from flask import current_app


class MailError(Exception):
    """The message was not handed over: the server was unreachable, timed out or refused it."""


class ServerUnavailable(MailError):
    """No session with the server could be opened (down, unreachable, TLS or sign-in failed):
    any other message would fail the same way now."""


def build_message(
    to: str,
    subject: str,
    body: str,
    *,
    attachment_name: str | None = None,
    attachment: bytes | None = None,
    message_id: str | None = None,
    sender_name: str = "",
    reply_to: str = "",
) -> EmailMessage:
    """A plain-text email from MAIL_FROM (shown as `sender_name` when MAIL_FROM names nobody),
    with an optional PDF attachment."""
    message = EmailMessage()
    mail_from = current_app.config["MAIL_FROM"]
    name, address = parseaddr(mail_from)
    message["From"] = formataddr((sender_name, address)) if sender_name and not name else mail_from
    message["To"] = to
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    if message_id:
        message["Message-ID"] = message_id
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="pdf",
                               filename=attachment_name or "document.pdf")
    return message


def sender_domain() -> str:
    """The domain of MAIL_FROM, for Message-IDs."""
    return parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "localhost"


def send(message: EmailMessage) -> None:
    """Hand one message to the SMTP server. Raises ServerUnavailable when no session could be opened,
    MailError when the server did not accept the message."""
    config = current_app.config
    where = f"{config['SMTP_HOST']}:{config['SMTP_PORT']}"
    if config["SMTP_SSL"] and config["SMTP_STARTTLS"]:
        raise ServerUnavailable("Set SMTP_SSL or SMTP_STARTTLS, not both.")
    try:
        smtp = _connect(config)
    except (smtplib.SMTPException, OSError) as err:
        raise ServerUnavailable(f"Could not connect to {where}: {_describe(err)}") from err
    try:
        smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as err:
        raise MailError(f"{where} did not accept the message: {_describe(err)}") from err
    finally:
        _close(smtp)


def _connect(config) -> smtplib.SMTP:
    """An SMTP session, encrypted as configured and signed in when SMTP_USERNAME is set."""
    host, port, timeout = config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_TIMEOUT"]
    if config["SMTP_SSL"]:
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    try:
        if config["SMTP_STARTTLS"]:
            smtp.starttls(context=ssl.create_default_context())
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
    except BaseException:
        smtp.close()
        raise
    return smtp


def _close(smtp: smtplib.SMTP) -> None:
    """Say goodbye; a message already accepted stays accepted whatever QUIT answers."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _describe(err: Exception) -> str:
    if isinstance(err, smtplib.SMTPResponseException):
        text = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else str(err.smtp_error)
        return f"{err.smtp_code} {text}"
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{to}: {code} {text.decode(errors='replace')}"
                         for to, (code, text) in err.recipients.items())
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
