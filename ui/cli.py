"""`citeline ui --kb DIR [--port N]`: launch the Streamlit app on a knowledge base."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

APP = Path(__file__).with_name("app.py")


def register(sub: Any) -> None:
    from assistant.cli import add_kb_argument, add_model_arguments

    p = sub.add_parser("ui", help="open the chat interface in the browser (Streamlit)")
    add_kb_argument(p)
    add_model_arguments(p)
    p.add_argument("--model", default=None, help="answer model spec (default: qwen, or CITELINE_MODEL)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
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
            script_args += [flag, str(Path(value).expanduser().resolve()) if flag == "--kb" else value]
    return command + (["--", *script_args] if script_args else [])


def cmd_ui(args: argparse.Namespace) -> int:
    try:
        import streamlit  # noqa: F401
    except ModuleNotFoundError:
        print("citeline: error: the UI needs Streamlit: pip install 'citeline[ui]'", file=sys.stderr)
        return 2
    try:
        return subprocess.call(streamlit_command(args))
    except KeyboardInterrupt:
        return 130
