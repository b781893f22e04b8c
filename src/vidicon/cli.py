"""Command line: ``vidicon serve`` and ``vidicon demo``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vidicon import __version__
from vidicon.api.server import create_app
from vidicon.app import Vidicon
from vidicon.config import ConfigError, load_config, with_overrides
from vidicon.process import serve

DEMO_CAMERAS = 4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidicon", description="Vidicon network video recorder")
    parser.add_argument("--version", action="version", version=f"vidicon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "run the server"),
        ("demo", f"run the server with {DEMO_CAMERAS} simulated cameras on the embedded default"),
    ):
        cmd = commands.add_parser(name, help=text, description=text)
        cmd.add_argument("--data-dir", type=Path, help="recordings and database (default: ./data)")
        cmd.add_argument("--http-port", type=int, help="HTTP port (default 8080)")
        cmd.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        cmd.add_argument("--config", type=Path, help="TOML configuration file")
        cmd.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = with_overrides(
            load_config(args.config),
            data_dir=args.data_dir,
            http_port=args.http_port,
            host=args.host,
            simulated_cameras=DEMO_CAMERAS if args.command == "demo" else None,
        )
    except ConfigError as exc:
        print(f"vidicon: {exc}", file=sys.stderr)
        return 2
    vidicon = Vidicon(config)
    app = create_app(vidicon)
    serve(vidicon, app, args.log_level)
    return 0
