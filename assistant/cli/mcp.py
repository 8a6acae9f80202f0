"""`citeline mcp --kb DIR [--model M] [--allow-ingest]`: the MCP server (assistant.server.mcp_api) on stdio, for an
agent host's config. stdout carries the protocol, so everything else goes to stderr."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from assistant.cli import add_kb_argument


def register(sub: Any) -> None:
    p = sub.add_parser("mcp", help="serve a knowledge base to MCP hosts over stdio (search, ask, pages, documents)")
    add_kb_argument(p)
    p.add_argument("--model", default=None, help="chat model for the `ask` tool, as for `citeline ask --model`")
    p.add_argument("--allow-ingest", action="store_true",
                   help="also offer the `ingest` tool (it reads files and folders on this machine)")
    p.set_defaults(func=cmd_mcp)


def cmd_mcp(args: argparse.Namespace) -> int:
    from assistant.config import Settings
    from assistant.sdk import Citeline
    from assistant.server.mcp_api import McpSettings, build_mcp

    settings = Settings.from_env(args.kb)
    if args.model:
        settings = replace(settings, model=args.model)
    sdk = Citeline(args.kb, settings=settings)
    if not args.allow_ingest:
        sdk.status()  # no KB: fail now, with the message that says how to make one, not on the first tool call
    server = build_mcp(sdk, McpSettings(model=args.model, allow_ingest=args.allow_ingest))
    print(f"citeline: MCP server for {sdk.location} on stdio ({'with' if args.allow_ingest else 'no'} ingest tool)",
          file=sys.stderr)
    try:
        server.run("stdio")
    finally:
        sdk.close()
    return 0
