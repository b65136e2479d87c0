"""Headless Chromium for the browser tests: Debian's `chromium` and `chromedriver` (apt packages
`chromium chromium-driver`) driven by Selenium, which is told both paths so that it never tries
to download a browser or driver. Servers under test run as real processes on a free port of
127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser")
#: where the tests save what the browser showed (screenshots for docs/, or a failure's page)
SCREENSHOT_DIR = os.environ.get("MMFUSION_SCREENSHOT_DIR")


def find_chromium() -> tuple[str | None, str | None]:
    """(browser, driver) executables, each None when not installed."""
    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    return browser, shutil.which("chromedriver")


def missing_browser_reason() -> str | None:
    browser, driver = find_chromium()
    if browser is None:
        return "no Chromium binary: apt-get install chromium chromium-driver to run this test"
    if driver is None:
        return f"Chromium at {browser} but no chromedriver: apt-get install chromium-driver"
    return None


def port_for_a_browser() -> int:
    """A free port for a server a browser test opens; the test is skipped without a browser."""
    reason = missing_browser_reason()
    if reason:
        pytest.skip(reason)
    return free_port()


@contextmanager
def chromium(width: int = 1280, height: int = 1600) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = find_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield session
    finally:
        session.quit()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float, what: str, poll: float = 0.3):
    """The first truthy value of `condition()`, or AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def server(args: Sequence[str], url: str, cwd: Path, timeout: float = 240) -> Iterator[str]:
    """`python -m <args>` running until the block ends; yields `url` once it answers."""
    log = cwd / f"server-{int(time.time() * 1000)}.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: its workers end with it
        )
    try:

        def answers() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"{args[0]} exited {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(answers, timeout, f"{url} ({' '.join(args)})", poll=0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def screenshot(session, name: str) -> None:
    """Save the page as SCREENSHOT_DIR/name (only when MMFUSION_SCREENSHOT_DIR is set)."""
    if SCREENSHOT_DIR:
        from PIL import Image

        path = Path(SCREENSHOT_DIR) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        session.save_screenshot(str(path))
        with Image.open(path) as image:  # 256 colours: a third of the size, for docs/
            small = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
        small.save(path, optimize=True)
