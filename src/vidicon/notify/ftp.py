"""FTP: uploads each event's snapshot JPEG.

The standard library's ftplib (active or passive mode, plain or explicit
FTPS with a protected data channel) runs in a worker thread, one short
session per file, every socket operation bounded by the timeout. A file is
stored under a temporary ``.part`` name and renamed when complete, so a
watcher on the server never picks up half a picture. Missing directories are
created. Events without a picture have nothing to upload and are skipped.
"""

from __future__ import annotations

import asyncio
import ftplib
import io
import ssl

from vidicon.config import FtpConfig
from vidicon.notify.delivery import PermanentError
from vidicon.notify.message import Notice


class FtpSender:
    def __init__(self, config: FtpConfig) -> None:
        self.config = config
        self.name = f"ftp {config.host}:{config.port}"
        self.secrets = (config.password,)
        self.timeout_s = config.timeout_s

    async def open(self) -> None:
        return None

    async def send(self, notice: Notice) -> None:
        if notice.snapshot is None:
            return
        await asyncio.to_thread(self.upload, notice.file_name(), notice.snapshot)

    def upload(self, name: str, data: bytes) -> None:
        """Store ``data`` as ``name`` in the configured directory (blocking)."""
        config = self.config
        # Plain FTP only where the administrator configured it (tls = false).
        ftp: ftplib.FTP = (
            ftplib.FTP_TLS(context=ssl.create_default_context(), timeout=config.timeout_s)  # noqa: S321
            if config.tls
            else ftplib.FTP(timeout=config.timeout_s)  # noqa: S321
        )
        try:
            ftp.connect(config.host, config.port)
            ftp.login(config.username, config.password)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
            ftp.set_pasv(config.passive)
            _enter(ftp, config.directory)
            partial = f"{name}.part"
            ftp.storbinary(f"STOR {partial}", io.BytesIO(data))
            ftp.rename(partial, name)
            ftp.quit()
        except ftplib.error_perm as exc:
            raise PermanentError(f"FTP {str(exc)[:120]}") from None
        finally:
            ftp.close()

    async def close(self) -> None:
        return None


def _enter(ftp: ftplib.FTP, directory: str) -> None:
    """Change to ``directory``, creating the parts that do not exist."""
    if directory.startswith("/"):
        ftp.cwd("/")
    for part in directory.split("/"):
        if not part:
            continue
        try:
            ftp.cwd(part)
        except ftplib.error_perm:
            ftp.mkd(part)
            ftp.cwd(part)
