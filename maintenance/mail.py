"""Email through the Smart Host: the appliance's one SMTP client (the alerts send with it).

Plain SMTP to the relay, upgraded with STARTTLS when the relay offers it; a total timeout per
connection so a relay that never answers cannot hold the maintenance worker.
"""

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

TIMEOUT = 10  # seconds for each step of the SMTP conversation


class MailError(Exception):
    """The relay refused the message or could not be reached; the message says why."""


def build(sender, recipients, subject, body):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject.replace("\r", " ").replace("\n", " ")
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(body)
    return message


def send(host, port, message, timeout=TIMEOUT):
    """Send `message` (an EmailMessage) through the relay at host:port."""
    where = f"the Smart Host {host}:{port}"
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as relay:
            relay.ehlo()
            if relay.has_extn("starttls"):
                relay.starttls(context=ssl.create_default_context())
                relay.ehlo()
            refused = relay.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        raise MailError(f"{where} refused every recipient: "
                        f"{_refusals(error.recipients)}") from None
    except smtplib.SMTPResponseException as error:
        raise MailError(f"{where} answered {error.smtp_code} "
                        f"{_words(error.smtp_error)}") from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
        words = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise MailError(f"{where} cannot be reached: {words}") from None
    if refused:
        raise MailError(f"{where} refused {_refusals(refused)}")


def _words(raw):
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _refusals(recipients):
    return "; ".join(f"{address} ({code} {_words(text)})"
                     for address, (code, text) in recipients.items())
