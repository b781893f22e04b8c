"""The server process: runs the HTTP server and restarts itself on request.

A restart (TS-API ``/api/system?restart``) is a graceful stop followed by
``os.execv`` of the same interpreter with the same arguments: the process
keeps its id, so a supervisor (systemd, a container's PID 1) sees one
service that never went away, while every module, thread, camera
connection and database handle starts afresh. Spawning a child and exiting
instead would orphan the child from such supervisors.
"""

from __future__ import annotations

import logging
import os
import sys

import uvicorn
from fastapi import FastAPI

from vidicon.app import Vidicon

log = logging.getLogger(__name__)
# Live viewers hold WebSockets open; a restart must not wait on them forever.
GRACEFUL_SHUTDOWN_S = 10


def serve(vidicon: Vidicon, app: FastAPI, log_level: str) -> None:
    """Run until stopped (SIGINT/SIGTERM); re-execute if a restart was asked."""
    server_config = vidicon.config.server
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=server_config.host,
            port=server_config.http_port,
            log_level=log_level,
            access_log=log_level == "debug",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    )
    restart = False

    def request_restart() -> None:
        nonlocal restart
        restart = True
        server.should_exit = True

    vidicon.system.restart_hook = request_restart
    server.run()
    if restart:
        reexecute()


def reexecute() -> None:
    """Replace this process with a fresh run of the same command."""
    argv = [sys.executable, *sys.orig_argv[1:]]
    log.warning("restarting: %s", " ".join(argv))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)  # noqa: S606 - our own interpreter and arguments, no shell
