"""What the console's browser tests run: a real ``sluice serve`` process on loopback, and Debian's
headless Chromium started by PID and driven by Playwright over the Chrome DevTools Protocol.

Playwright (Microsoft's, released monthly) is used only as a CDP client: ``connect_over_cdp`` attaches
to the Chromium this module started, so no browser is downloaded and the test stops the browser it
started, by its PID (and its process group: the renderers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
STARTUP_SECONDS = 30.0
STOP_SECONDS = 5.0
ADMIN_TOKEN = "console-admin-token"
READER_TOKEN = "console-reader-token"
POLICY = """
grants:
  - {principals: [ops], streams: ["*"], permissions: [admin]}
  - {principals: [viewer], streams: [orders, jobs], permissions: [read]}
"""
SCREENSHOTS_VARIABLE = "SLUICE_CONSOLE_SCREENSHOTS"
"""Set to a folder (docs/console) to keep the pages' screenshots there; otherwise they go to the test's tmp_path."""


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the process group the test started, SIGKILL after STOP_SECONDS."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout=STOP_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


def _text_of(path: Path) -> str:
    """The file's text; empty while it does not exist (small files, read between polls)."""
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


async def _wait_for_file(
    path: Path, process: asyncio.subprocess.Process, log: Path, what: str, *, complete: Callable[[str], bool]
) -> str:
    """The file's text once ``complete`` says it is whole; AssertionError with the log if the process died first."""
    deadline = asyncio.get_running_loop().time() + STARTUP_SECONDS
    while not complete(text := _text_of(path).strip()):
        if process.returncode is not None or asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not start:\n{_text_of(log)[-4000:]}")
        await asyncio.sleep(0.05)
    return text


@contextlib.asynccontextmanager
async def sluice_serve(dsn: str, directory: Path) -> AsyncIterator[str]:
    """``sluice serve`` with two tokens (ops: admin everywhere; viewer: read on orders and jobs); yields
    its HTTP base address."""
    policy_file = directory / "policy.yaml"
    policy_file.write_text(POLICY, encoding="utf-8")
    ready_file = directory / "ready.json"
    log = directory / "serve.log"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SLUICE_")}
    environment["SLUICE_API_TOKENS"] = f"ops={ADMIN_TOKEN},viewer={READER_TOKEN}"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sluice.cli",
            "serve",
            "--dsn",
            dsn,
            "--grpc-address",
            "127.0.0.1:0",
            "--http-address",
            "127.0.0.1:0",
            "--access-policy-file",
            str(policy_file),
            "--grace-seconds",
            "1",
            "--ready-file",
            str(ready_file),
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )
    try:
        text = await _wait_for_file(ready_file, process, log, "sluice serve", complete=lambda text: text.endswith("}"))
        yield f"http://127.0.0.1:{json.loads(text)['http_port']}"
    finally:
        await _stop(process)


CHROMIUM_ARGUMENTS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
)


@contextlib.contextmanager
def chromium_process(directory: Path) -> Iterator[int]:
    """Debian's Chromium, headless, on a DevTools port of its choosing (yielded); stopped by its PID.

    Synchronous, so one browser can serve every test of a pytest worker (each test attaches with its own
    event loop and its own browser context: no cookie is shared between tests)."""
    profile = directory / "chromium-profile"
    log = directory / "chromium.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_ARGUMENTS, f"--user-data-dir={profile}", "about:blank"],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while len(active := _text_of(profile / "DevToolsActivePort").split()) != 2:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"chromium did not start:\n{_text_of(log)[-4000:]}")
            time.sleep(0.05)
        yield int(active[0])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.asynccontextmanager
async def attached_browser(port: int) -> AsyncIterator[Browser]:
    """Playwright attached over CDP to the Chromium on ``port``; detached (contexts closed) at the end."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
        try:
            yield browser
        finally:
            await browser.close()


async def signed_in_page(browser: Browser, base: str, token: str) -> Page:
    """A new page, signed in through the console's login form."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{base}/console/")
    await page.fill("input[name=token]", token)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/console/")
    return page


def screenshot_folder(tmp_path: Path) -> Path:
    chosen = os.environ.get(SCREENSHOTS_VARIABLE)
    folder = Path(chosen) if chosen else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
