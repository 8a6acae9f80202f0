"""`citeline serve`: the headless HTTP API (assistant.server) on uvicorn. The API key comes from the environment
(`CITELINE_SERVER_KEY`) here, at the edge, and nowhere else."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from dataclasses import replace
from typing import Any

from assistant.cli import add_kb_argument
from ingest.errors import MissingDependency

API_KEY_ENV = "CITELINE_SERVER_KEY"


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
    api_key = os.environ.get(API_KEY_ENV) or None
    if api_key is None and not is_loopback(args.host):
        print(f"citeline: error: refusing to serve on {args.host} without an API key: set {API_KEY_ENV} "
              "(clients then send `Authorization: Bearer <key>`), or serve on 127.0.0.1", file=sys.stderr)
        return 2
    from assistant.server.app import create_app

    uvicorn = _uvicorn()
    sdk = _sdk(args)
    print(f"citeline: serving {sdk.kb_dir} at http://{args.host}:{args.port} (API docs at /docs; "
          f"{'bearer key required' if api_key else 'no API key'})", file=sys.stderr)
    app = create_app(sdk, api_key=api_key, ingest_roots=args.ingest_root)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _sdk(args: argparse.Namespace) -> Any:
    from assistant.config import Settings
    from assistant.sdk import Citeline

    settings = Settings.from_env(args.kb)
    if args.model:
        settings = replace(settings, model=args.model)
    return Citeline(args.kb, settings=settings)


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
