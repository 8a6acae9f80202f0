"""The README's examples are executed, so they never rot: the newcomer's main command (after setup) and the
three-line SDK quickstart, both with the real offline default models."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)


def test_readme_opens_with_exactly_two_newcomer_commands() -> None:
    head = README.split("## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)\n```", head, flags=re.S)
    assert len(blocks) == 2 and all(len(b.strip().splitlines()) == 1 for b in blocks)
    assert blocks[0].startswith("bash scripts/setup.sh &&") and "citeline ask" in blocks[0]
    assert blocks[1].startswith("bash scripts/setup.sh --dev &&") and "pytest" in blocks[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci and "<!-- test-command -->" in README


@pytest.mark.llm
def test_readme_main_command_runs_and_answers_with_a_citation(tmp_path: Path) -> None:
    """Everything after `bash scripts/setup.sh &&` (the venv is the one running this test)."""
    steps = [s.strip() for s in _bash_blocks()[0].split("&&")][1:]
    bindir = Path(sys.executable).parent
    env = {**os.environ, "CITELINE_HOME": str(tmp_path / "home")}
    out = ""
    for step in steps:
        argv = shlex.split(step)
        argv[0] = str(bindir / Path(argv[0]).name) if argv[0].startswith(".venv/bin/") else argv[0]
        argv = [a.replace("samples/demo", str(tmp_path / "demo")).replace(".citeline/demo", str(tmp_path / "kb"))
                for a in argv]
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{step}\n{proc.stdout}\n{proc.stderr}"
        out = proc.stdout
    assert "18 hours" in out, out
    assert re.search(r"\[\d+\].*aurora.*p\.\d", out, flags=re.I | re.S), out


@pytest.mark.llm
def test_readme_sdk_quickstart_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = re.findall(r"```python\n(.*?)\n```", README, flags=re.S)[0]
    assert len(code.strip().splitlines()) == 3
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_samples.py"), str(tmp_path / "samples" / "demo")],
                   check=True, capture_output=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - executing our own README is the point
    kb = namespace["kb"]
    answer = kb.ask("What is the battery life of the Aurora X2?")  # type: ignore[attr-defined]
    assert not answer.abstained and answer.citations
    assert all(c.verified for c in answer.citations)
    assert any("aurora" in c.doc.lower() for c in answer.citations)


def test_readme_openai_client_example_runs_against_citeline_serve(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The README's OpenAI-client snippet, as written, against a real server on loopback (extractive answers)."""
    pytest.importorskip("openai")
    from assistant.config import Settings
    from assistant.sdk import Citeline
    from assistant.server.app import create_app
    from retrieval.settings import KBSettings
    from tests.conftest import serving

    code = next(c for c in re.findall(r"```python\n(.*?)\n```", README, flags=re.S) if "from openai import" in c)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_samples.py"), str(tmp_path / "demo")],
                   check=True, capture_output=True)
    settings = Settings(kb_dir=tmp_path / "kb", model="extractive",
                        kb=KBSettings(text_model="fake", image_model="fake", tag_images=False))
    with Citeline(tmp_path / "kb", settings=settings) as sdk:
        sdk.ingest(tmp_path / "demo")
        with serving(create_app(sdk, api_key=None)) as url:
            assert "http://127.0.0.1:8000/v1" in code
            exec(compile(code.replace("http://127.0.0.1:8000", url), "README.md", "exec"), {})  # noqa: S102
    out = capsys.readouterr().out
    assert re.search(r"\[1\]", out) and "Sources:" in out and "aurora" in out.lower(), out
    assert "18 hours" in out, out
