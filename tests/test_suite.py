"""The suite itself: it cannot hang CI, it says what it skipped and why, and `pytest -q` is the fast lane."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _pytest(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def test_a_newcomer_without_the_public_data_is_told_what_was_skipped_and_where_to_get_it(tmp_path: Path) -> None:
    run = _pytest("-q", "tests/test_eval_metrics.py::test_loaders_read_the_shared_data",
                  env={"CITELINE_TEST_DATA": str(tmp_path / "absent")})
    assert run.returncode == 0, run.stdout[-2000:]
    assert "1 skipped" in run.stdout
    assert "tests skipped for missing public data" in run.stdout
    assert "tests/test_eval_metrics.py::test_loaders_read_the_shared_data" in run.stdout
    assert "README.md, 'Test data'" in run.stdout
    assert "### Test data" in (ROOT / "README.md").read_text()


def test_a_hung_test_is_stopped_by_the_timeout(tmp_path: Path) -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert 0 < int(config["timeout"]) <= 600
    hung = tmp_path / "test_hung.py"
    hung.write_text("import time\n\ndef test_hangs():\n    time.sleep(60)\n")
    run = _pytest("-q", "--timeout=2", "--rootdir", str(tmp_path), "-c", os.devnull, str(hung))
    assert run.returncode == 1 and "Timeout" in run.stdout + run.stderr


def test_the_fast_lane_leaves_out_slow_tests() -> None:
    fast = _pytest("--collect-only", "-q", "tests/test_pdf_robustness.py")
    slow = _pytest("--collect-only", "-q", "-m", "slow", "tests/test_pdf_robustness.py")
    assert "test_every_pdf_ends_parsed_or_file_error" not in fast.stdout and "deselected" in fast.stdout
    assert "test_every_pdf_ends_parsed_or_file_error" in slow.stdout
    assert "test_outline_and_sections" in fast.stdout and "test_outline_and_sections" not in slow.stdout


@pytest.mark.skipif(importlib.util.find_spec("open_clip") is not None, reason="open_clip is installed here")
def test_clip_tests_are_reported_as_skipped_with_how_to_run_them() -> None:
    run = _pytest("-q", "-rs", "tests/test_clip.py")
    assert "1 skipped" in run.stdout, run.stdout[-2000:]
    assert "setup.sh --dev --clip" in run.stdout
