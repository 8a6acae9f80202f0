"""End to end: the real app (`citeline ui`) on loopback, driven by headless Chromium through
upload → ingest → ask → citation visible → open page. Screenshots go to artifacts/ui/.

Opt-in (`-m browser`); skipped with a reason when Chromium, chromedriver or selenium is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, free_port, make_pdf

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "artifacts" / "ui"
WINDOW = (1366, 850)
ANSWER = "The battery lasts 12 hours on a full charge [1]."
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}")


def _requirements() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} not found (Debian `chromium`, installed by .ci/run)"
    if not CHROMEDRIVER.is_file():
        return f"{CHROMEDRIVER} not found (Debian `chromium-driver`, installed by .ci/run)"
    try:
        import selenium  # noqa: F401
    except ModuleNotFoundError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the app did not answer on port {port} within {timeout:.0f} s")


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    reason = _requirements()
    if reason:
        pytest.skip(reason)
    kb, port = tmp_path / "kb", free_port()
    command = [sys.executable, "-m", "assistant.cli", "ui", "--kb", str(kb), "--port", str(port), "--headless",
               "--text-model", "fake", "--image-model", "fake", "--model", f"fake:{ANSWER}"]
    log = (tmp_path / "app.log").open("wb")
    proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"})
    try:
        _wait_healthy(port, proc)
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:
        _kill_group(proc)
        log.close()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """`citeline ui` starts streamlit as a child: end the whole process group we started."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="citeline-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_window_size(*WINDOW)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


IDLE = "return document.querySelector('[data-testid=stApp]').dataset.testScriptState !== 'running'"


def _wait_idle(driver: Any, timeout: float = 120.0) -> None:
    """Wait until the app's script run (e.g. the rerun an upload triggers) is over."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(IDLE))


def _shot(driver: Any, name: str) -> None:
    """Screenshot once images have loaded and animations settled."""
    from selenium.webdriver.support.ui import WebDriverWait

    loaded = "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    _wait_idle(driver)
    time.sleep(0.8)  # expanders and dialogs animate in
    WebDriverWait(driver, 15).until(lambda d: d.execute_script(loaded))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _wait_text(driver: Any, text: str, timeout: float = 60.0) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    xpath = f"//*[contains(normalize-space(.), {text!r}) and not(.//*[contains(normalize-space(.), {text!r})])]"
    return WebDriverWait(driver, timeout).until(ec.visibility_of_element_located((By.XPATH, xpath)))


def _wait_css(driver: Any, selector: str, timeout: float = 30.0) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.element_to_be_clickable((By.CSS_SELECTOR, selector)))


def _send_keys(driver: Any, selector: str, *keys: str, timeout: float = 60.0) -> None:
    """Type into the first element matching `selector`, finding it again when a Streamlit rerun replaced it
    between finding and typing (a stale element)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        try:
            found = driver.find_elements(By.CSS_SELECTOR, selector)
            if found:
                found[0].send_keys(*keys)
                return
        except StaleElementReferenceException:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"no element matches {selector!r}")
        time.sleep(0.25)


def _wait_present(driver: Any, selector: str, timeout: float = 60.0) -> list[Any]:
    """The elements matching `selector` once at least one is in the page (an empty list after `timeout`)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout).until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))
    except TimeoutException:
        return []


def _click_text(driver: Any, text: str, tag: str = "*", timeout: float = 90.0) -> None:
    """Click once the element is there and enabled. A cold first run on a loaded machine can take a while to
    finish the rerun that enables a button (an upload's rerun), so the wait is generous; a timeout says what the
    page showed instead."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    xpath = f"//{tag}[contains(normalize-space(.), {text!r})]"
    try:
        WebDriverWait(driver, timeout).until(ec.element_to_be_clickable((By.XPATH, xpath))).click()
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        pytest.fail(f"no clickable {tag} {text!r} within {timeout:.0f} s; the page showed:\n{body[-3000:]}")


def _sample_pdf(folder: Path) -> Path:
    return make_pdf(folder / "battery manual.pdf", [
        "The battery lasts 12 hours on a full charge.\n\nCharging takes 2 hours with the supplied adapter.",
        "The warranty covers two years from the date of purchase.",
    ], title="Battery manual")


def test_upload_ingest_ask_cite(app_server: tuple[str, Path], browser: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    url, tmp = app_server
    pdf = _sample_pdf(tmp)
    browser.get(url)
    _wait_text(browser, "Ask a question about your documents")
    _wait_css(browser, "textarea[data-testid='stChatInputTextArea']")
    _shot(browser, "01-empty-chat")

    _click_text(browser, "Knowledge base", "label")
    _wait_text(browser, "Add documents")
    _send_keys(browser, "input[type=file]", str(pdf))
    _wait_text(browser, "battery manual.pdf")
    _wait_idle(browser)
    _click_text(browser, "Ingest 1 file(s)", "button")
    _wait_text(browser, "Ingested 1", timeout=120)
    _wait_text(browser, "Documents (1)")
    _shot(browser, "02-ingested")

    _click_text(browser, "Chat", "label")
    _wait_css(browser, "textarea[data-testid='stChatInputTextArea']")
    _send_keys(browser, "textarea[data-testid='stChatInputTextArea']", "How long does the battery last?", Keys.ENTER)
    _wait_text(browser, "verified ✓", timeout=120)
    # the citation's page image arrives a moment after its text (Streamlit sends the image bytes separately)
    assert _wait_present(browser, "[data-testid='stExpander'] img"), "no highlighted page image"
    _shot(browser, "03-answer-with-citation")

    _click_text(browser, "Open page", "button")
    _wait_css(browser, "[role='dialog'] img")
    _shot(browser, "04-open-page")
