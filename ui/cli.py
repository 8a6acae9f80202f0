"""`citeline ui --kb DIR [--port N]`: launch the Streamlit app on a knowledge base.

The app can upload, ingest and delete documents, so it is not served off loopback to anyone who asks: a host
other than 127.0.0.1 / ::1 / localhost needs a password (`CITELINE_UI_PASSWORD`, from the environment so that it
never shows in `ps`; the app then asks for it before anything else) or an explicit `--allow-remote`, which
prints the risk. Off loopback the app also opens only the knowledge base and models it was started with (a
visitor cannot type a folder, a model path or an endpoint URL, which would carry the operator's API key).
Streamlit replaces this process (exec), so a signal to `citeline ui` reaches the server itself
and nothing is left running on the port.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from retrieval.store import is_dsn

APP = Path(__file__).with_name("app.py")
PASSWORD_ENV = "CITELINE_UI_PASSWORD"
REMOTE_ENV = "CITELINE_UI_REMOTE"  # set for the app when served off loopback: no visitor-typed folders or URLs


def register(sub: Any) -> None:
    from assistant.cli import add_kb_argument, add_model_arguments

    p = sub.add_parser("ui", help="open the chat interface in the browser (Streamlit)")
    add_kb_argument(p)
    add_model_arguments(p)
    p.add_argument("--model", default=None, help="answer model spec (default: qwen, or CITELINE_MODEL)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--host", default="127.0.0.1",
                   help=f"address to listen on (default: loopback only; any other needs {PASSWORD_ENV} or "
                   "--allow-remote)")
    p.add_argument("--allow-remote", action="store_true",
                   help=f"serve off loopback without a password ({PASSWORD_ENV}): anyone who can reach the port "
                   "can read, upload, ingest and delete documents")
    p.add_argument("--headless", action="store_true", help="do not open a browser")
    p.set_defaults(func=cmd_ui)


def streamlit_command(args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(args.port),
               "--server.address", args.host, "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]
    if args.headless:
        command += ["--server.headless", "true"]
    script_args = []
    for flag, value in (("--kb", args.kb), ("--text-model", args.text_model), ("--image-model", args.image_model),
                        ("--model", args.model)):
        if value:
            script_args += [flag,
                            str(Path(value).expanduser().resolve()) if flag == "--kb" and not is_dsn(value) else value]
    return command + (["--", *script_args] if script_args else [])


def exposure(host: str, port: int, password: str | None, allow_remote: bool) -> tuple[bool, str | None]:
    """Whether to start on `host`, and what to tell the user first (the refusal, or the risk taken)."""
    from assistant.cli.serve import is_loopback

    if is_loopback(host) or password:
        return True, None
    if not allow_remote:
        return False, (f"citeline: error: refusing to serve the UI on {host} without a password: anyone who can "
                       f"reach port {port} could read, upload, ingest and delete documents. Set {PASSWORD_ENV} "
                       "(the app then asks for it), serve on 127.0.0.1, or pass --allow-remote to accept the risk")
    return True, (f"citeline: warning: serving the UI on {host}:{port} with no password (--allow-remote): anyone "
                  f"who can reach it can read, upload, ingest and delete documents; set {PASSWORD_ENV} to require one")


def cmd_ui(args: argparse.Namespace) -> int:
    start, message = exposure(args.host, args.port, os.environ.get(PASSWORD_ENV) or None, args.allow_remote)
    if message:
        print(message, file=sys.stderr)
    if not start:
        return 2
    try:
        import streamlit  # noqa: F401
    except ModuleNotFoundError:
        print("citeline: error: the UI needs Streamlit: pip install 'citeline[ui]'", file=sys.stderr)
        return 2
    command = streamlit_command(args)
    from assistant.cli.serve import is_loopback

    if not is_loopback(args.host):
        os.environ[REMOTE_ENV] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":  # become Streamlit: signals reach it, and no child outlives `citeline ui`
        os.execv(command[0], command)
    try:  # pragma: no cover - Windows has no exec that keeps the process
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130
