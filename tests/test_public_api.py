"""The curated public API: every name in `assistant.__all__` resolves, and the package loads them on first use."""

from __future__ import annotations

import subprocess
import sys

import assistant
from tests.conftest import ROOT


def test_every_public_name_resolves() -> None:
    for name in assistant.__all__:
        assert getattr(assistant, name) is not None, name


def test_importing_the_error_tree_does_not_load_the_sdk() -> None:
    code = "import sys, assistant.errors; print('assistant.sdk' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
