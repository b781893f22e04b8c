"""E-mail over SMTP: one mail per event, its snapshot attached as a JPEG.

aiosmtplib speaks SMTP on the event loop, with STARTTLS (``starttls``) or
implicit TLS (``ssl``) and optional login. The subject says what happened
where and when; the body repeats it and carries the JSON message, so a mail
filter or script can read it. A 5xx reply is final, anything else is retried.
"""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from vidicon.config import EmailConfig
from vidicon.notify.delivery import PermanentError
from vidicon.notify.message import Notice


class SmtpSender:
    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self.name = f"smtp {config.host}:{config.port}"
        self.secrets = (config.password or "",)
        self.timeout_s = config.timeout_s

    def message(self, notice: Notice) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = f"Vidicon: {notice.subject}"
        mail["From"] = self.config.sender
        mail["To"] = ", ".join(self.config.to)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid("vidicon")
        text = json.dumps(notice.message, indent=2, ensure_ascii=False)
        mail.set_content(f"{notice.subject}\n\n{text}\n")
        if self.config.attach_snapshot and notice.snapshot is not None:
            mail.add_attachment(
                notice.snapshot, maintype="image", subtype="jpeg", filename=notice.file_name()
            )
        return mail

    async def open(self) -> None:
        return None

    async def send(self, notice: Notice) -> None:
        config = self.config
        try:
            await aiosmtplib.send(
                self.message(notice),
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.ssl,
                start_tls=config.starttls,
                timeout=config.timeout_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise PermanentError(f"SMTP {exc.code}") from exc
            raise

    async def close(self) -> None:
        return None
