"""`citeline serve`: the headless HTTP API (assistant.server) on uvicorn. The API key comes from the environment
(`CITELINE_SERVER_KEY`) here, at the edge, and nowhere else."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from dataclasses import replace
from typing import Any

from assistant.cli import add_kb_argument
from assistant.config import SERVER_KEY_ENV, Settings
from ingest.errors import MissingDependency


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve a knowledge base over HTTP (JSON API, streaming answers, /docs)")
    add_kb_argument(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default=None, help="default chat model, as for `citeline ask --model`")
    p.add_argument("--ingest-root", action="append", default=[], metavar="DIR",
                   help="a server folder POST /v1/ingest may name by path (repeatable; uploads always allowed)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    api_key = settings.server_key
    if api_key is None and not is_loopback(args.host):
        print(f"citeline: error: refusing to serve on {args.host} without an API key: set {SERVER_KEY_ENV} "
              "(clients then send `Authorization: Bearer <key>`), or serve on 127.0.0.1", file=sys.stderr)
        return 2
    from assistant.sdk import Citeline
    from assistant.server.app import create_app

    uvicorn = _uvicorn()
    sdk = Citeline(args.kb, settings=settings)
    print(f"citeline: serving {sdk.location} at http://{args.host}:{args.port} (API docs at /docs; "
          f"{'bearer key required' if api_key else 'no API key'})", file=sys.stderr)
    app = create_app(sdk, api_key=api_key, ingest_roots=args.ingest_root)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env(args.kb)
    return replace(settings, model=args.model) if args.model else settings


def _uvicorn() -> Any:
    try:
        import uvicorn
    except ModuleNotFoundError as exc:
        raise MissingDependency("the HTTP server (uvicorn)", "pip install 'citeline[server]'") from exc
    return uvicorn


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
