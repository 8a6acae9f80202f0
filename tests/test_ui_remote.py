"""`citeline ui` is not an open door, and leaves nothing behind.

- Off loopback without `CITELINE_UI_PASSWORD` it refuses to start (checked as a subprocess, by argument only:
  it refuses before anything binds), unless `--allow-remote`, which states the risk.
- With a password, the app shows only the password box until it is given: no sidebar, no upload, ingest or
  remove (Streamlit's AppTest on the real app and a real KB); a wrong password does not open it.
- A SIGTERM or SIGINT to a real `citeline ui` on 127.0.0.1 frees the port and leaves no process running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("streamlit")
psutil = pytest.importorskip("psutil")

from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.conftest import ROOT, free_port, make_pdf  # noqa: E402
from ui.cli import PASSWORD_ENV, REMOTE_ENV, exposure  # noqa: E402
from ui.state import UIConfig  # noqa: E402

APP = str(ROOT / "ui" / "app.py")
PASSWORD = "correct horse battery staple"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != PASSWORD_ENV}
    return {**env, "PYTHONPATH": str(ROOT), "SE_AVOID_STATS": "true", **extra}


# -- refusing to open the door ------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "citeline.example.org"])
def test_ui_refuses_a_public_interface_without_a_password(tmp_path: Path, host: str):
    command = [sys.executable, "-m", "assistant.cli", "ui", "--kb", str(tmp_path / "kb"), "--host", host,
               "--port", str(free_port()), "--headless"]
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert f"refusing to serve the UI on {host} without a password" in done.stderr
    assert PASSWORD_ENV in done.stderr and "--allow-remote" in done.stderr
    assert "Traceback" not in done.stderr and "You can now view" not in done.stdout + done.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_password(host: str):
    assert exposure(host, 8501, None, allow_remote=False) == (True, None)


def test_a_password_or_an_explicit_risk_opens_a_public_interface():
    assert exposure("0.0.0.0", 8501, PASSWORD, allow_remote=False) == (True, None)
    start, warning = exposure("0.0.0.0", 8501, None, allow_remote=True)
    assert start and warning is not None
    assert warning.startswith("citeline: warning:") and "anyone" in warning and "delete" in warning
    assert PASSWORD_ENV in warning
    refused, message = exposure("0.0.0.0", 8501, None, allow_remote=False)
    assert not refused and message is not None and message.startswith("citeline: error:")


# -- the password gate ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from assistant.sdk import Citeline

    root = tmp_path_factory.mktemp("gate")
    (root / "docs").mkdir()
    make_pdf(root / "docs" / "manual.pdf", ["The battery lasts 12 hours on a full charge."])
    Citeline(root / "kb", text_model="fake", image_model="fake").ingest(root / "docs")
    return root / "kb"


def _gated_app(kb: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["base_config"] = UIConfig(kb_dir=str(kb), text_model="fake", image_model="fake",
                                               model="extractive")
    return at.run()


def _assert_locked(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert [t.label for t in at.text_input] == ["Password"] and at.text_input[0].proto.type == TextInputProto.PASSWORD
    assert [b.key for b in at.button] == ["login"]
    assert not at.get("file_uploader") and not at.chat_input and not at.sidebar.children
    assert not at.radio and not at.multiselect and not at.get("dataframe")


def test_gate_shows_nothing_but_the_password_box(fake_kb: Path, monkeypatch: pytest.MonkeyPatch):
    _assert_locked(_gated_app(fake_kb, monkeypatch))


@pytest.mark.parametrize("wrong", ["", "correct horse", PASSWORD.upper(), PASSWORD + " "])
def test_a_wrong_password_keeps_the_door_shut(fake_kb: Path, monkeypatch: pytest.MonkeyPatch, wrong: str):
    at = _gated_app(fake_kb, monkeypatch)
    at.text_input[0].set_value(wrong)
    at = at.button(key="login").click().run()
    _assert_locked(at)
    assert [e.value for e in at.error] == ["Wrong password."]
    assert "signed_in" not in at.session_state


def test_the_right_password_opens_upload_ingest_and_remove(fake_kb: Path, monkeypatch: pytest.MonkeyPatch):
    at = _gated_app(fake_kb, monkeypatch)
    at.text_input[0].set_value(PASSWORD)
    at = at.button(key="login").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.chat_input and "Password" not in [t.label for t in at.text_input]
    assert "login_password" not in at.session_state  # the session keeps that it signed in, not the password
    at = at.sidebar.radio(key="view").set_value("Knowledge base").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("file_uploader")) == 2  # files and a folder
    assert at.button(key="ingest") is not None and at.button(key="remove") is not None
    assert at.multiselect[0].label == "Remove documents" and "manual.pdf" in at.multiselect[0].options


def _signed_in(kb: Path, monkeypatch: pytest.MonkeyPatch, model: str, remote: bool) -> AppTest:
    if remote:
        monkeypatch.setenv(REMOTE_ENV, "1")
    else:
        monkeypatch.delenv(REMOTE_ENV, raising=False)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["base_config"] = UIConfig(kb_dir=str(kb), text_model="fake", image_model="fake", model=model)
    at = at.run()
    at.text_input[0].set_value(PASSWORD)
    at = at.button(key="login").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("model", ["extractive", "openai:served@http://127.0.0.1:9/v1"])
def test_off_loopback_visitors_cannot_type_folders_paths_or_urls(fake_kb: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  model: str):
    """A typed endpoint URL would receive the operator's API key; a typed folder would open or create a KB
    anywhere: off loopback the app offers only what it was started with and the built-in offline models."""
    at = _signed_in(fake_kb, monkeypatch, model, remote=True)
    assert not [t.label for t in at.sidebar.text_input]
    (choice,) = at.sidebar.selectbox
    expected = ["Offline (Qwen2.5 0.5B)", "Extractive (no model)"]
    assert choice.options == (expected if model == "extractive" else ["Configured (openai:served)", *expected])
    assert str(fake_kb) in " ".join(str(c.value) for c in at.sidebar.caption)


def test_on_loopback_the_folder_and_any_model_can_be_chosen(fake_kb: Path, monkeypatch: pytest.MonkeyPatch):
    at = _signed_in(fake_kb, monkeypatch, "extractive", remote=False)
    assert "Knowledge base folder" in [t.label for t in at.sidebar.text_input]
    assert "OpenAI-compatible server" in at.sidebar.selectbox(key="generator").options


def test_no_password_no_gate(fake_kb: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["base_config"] = UIConfig(kb_dir=str(fake_kb), text_model="fake", image_model="fake",
                                               model="extractive")
    at = at.run()
    assert not at.exception and at.chat_input and "login" not in [b.key for b in at.button]


# -- no orphan on termination --------------------------------------------------------------------------------
@pytest.fixture
def running_ui(fake_kb: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port, started = free_port(), []
    log = tmp_path / "ui.log"
    command = [sys.executable, "-m", "assistant.cli", "ui", "--kb", str(fake_kb), "--port", str(port), "--headless",
               "--text-model", "fake", "--image-model", "fake", "--model", "extractive"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=_env(**{PASSWORD_ENV: PASSWORD}), stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        for _ in range(300):  # Streamlit starts in a few seconds; give a loaded machine a minute
            assert proc.poll() is None, log.read_text(errors="replace")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail(f"citeline ui did not start: {log.read_text(errors='replace')[-2000:]}")
        started = _tree(proc.pid)
        yield proc, port, log
    finally:
        for p in started:  # whatever the test left (an orphan, when it fails), by the processes we started
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        proc.wait(timeout=10)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        return [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _listening(port: int) -> bool:
    """Whether anything still listens on the port (SO_REUSEADDR: connections in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_terminating_citeline_ui_frees_the_port_and_leaves_no_process(
        running_ui: tuple[subprocess.Popen[bytes], int, Path], signum: int):
    proc, port, log = running_ui
    tree = _tree(proc.pid)
    assert tree and _listening(port)
    os.kill(proc.pid, signum)  # the `citeline ui` process only, as `kill` or a process manager would
    proc.wait(timeout=60)
    gone, alive = psutil.wait_procs(tree, timeout=30)
    assert not alive, [(p.pid, p.cmdline()) for p in alive]
    assert not _listening(port), f"port {port} is still held after {signal.Signals(signum).name}"
    assert "Traceback" not in log.read_text(errors="replace")
