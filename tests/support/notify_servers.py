"""Real servers on loopback for the notification tests: a Mosquitto broker,
an SMTP server (aiosmtpd), an FTP server (pyftpdlib), a webhook receiver that
checks signatures as docs/design/0018-notifications.md tells receivers to,
and a black hole (accepts connections, never answers)."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import socket
import subprocess
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

from tests.support.server import free_port

LOCALHOST = "127.0.0.1"


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((LOCALHOST, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Mosquitto:
    """Debian's mosquitto on a loopback port; ``persistence`` keeps sessions
    across a restart (in the temporary directory)."""

    def __init__(self, workdir: Path, port: int | None = None, persistence: bool = False) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        lines = [f"listener {self.port} {LOCALHOST}", "allow_anonymous true"]
        if os.getuid() == 0:
            lines.append("user root")  # else it drops to "mosquitto", who cannot write here
        if persistence:
            lines += ["persistence true", f"persistence_location {workdir}/"]
        else:
            lines.append("persistence false")
        self.conf.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([binary, "-c", str(self.conf)], stdout=log, stderr=log)
        log.close()
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class SmtpSink:
    """aiosmtpd in its own thread; keeps every mail, checks the login."""

    def __init__(self, username: str, password: str) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.logins: list[str] = []
        self._credentials = (username.encode(), password.encode())
        self.controller = Controller(
            self,
            hostname=LOCALHOST,
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
            auth_required=True,
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == self._credentials
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.messages.append(mail)
        return "250 OK"

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class FtpSink:
    """pyftpdlib serving ``root`` to one user, polled in its own thread."""

    def __init__(self, root: Path, username: str, password: str) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        authorizer = DummyAuthorizer()
        authorizer.add_user(username, password, str(root), perm="elradfmwMT")
        # A refused login answers at once (pyftpdlib waits 3 s by default).
        handler = type(
            "Handler", (FTPHandler,), {"authorizer": authorizer, "auth_failed_timeout": 0.01}
        )
        self.server = FTPServer((LOCALHOST, 0), handler)
        self.port = int(self.server.address[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        self.server.close_all()

    def __enter__(self) -> FtpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


class WebhookSink:
    """An HTTP server that verifies X-Vidicon-Signature the documented way:
    HMAC-SHA256(secret, "<t>." + raw body), compared in constant time."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret
        self.requests: list[tuple[dict[str, str], bytes, bool]] = []  # headers, body, valid
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                valid = sink.verify(self.headers.get("X-Vidicon-Signature", ""), body)
                sink.requests.append((dict(self.headers.items()), body, valid))
                self.send_response(204 if valid else 401)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((LOCALHOST, 0), Handler)
        self.url = f"http://{LOCALHOST}:{self.server.server_address[1]}/hook?token=t0ken-in-url"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def verify(self, header: str, body: bytes) -> bool:
        if self.secret is None:
            return True
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        if "t" not in fields or "v1" not in fields:
            return False
        if abs(time.time() - int(fields["t"])) > 300:
            return False
        expected = hmac.new(
            self.secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, fields["v1"])

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class BlackHole:
    """A listening socket that never accepts: connections open, requests hang."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind((LOCALHOST, 0))
        self.socket.listen(16)
        self.port = int(self.socket.getsockname()[1])

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.socket.close()
