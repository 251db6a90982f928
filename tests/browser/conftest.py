"""A real console process and a real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from core.settings import ROOT
from tests.conftest import ADMIN_PASSWORD, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture
def console(subprocess_env):
    """Start `manage run web` on a free port over a bootstrapped database; yield its URL."""
    port = free_port()
    env = dict(subprocess_env, WEB_PORT=str(port))
    subprocess.run([sys.executable, "-m", "scripts.manage", "bootstrap"], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=120)
    proc = subprocess.Popen([sys.executable, "-m", "scripts.manage", "run", "web"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/login", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(proc.stderr.read().decode()[-2000:]) from None
            time.sleep(0.2)
    yield {"url": url, "user": "admin", "password": ADMIN_PASSWORD}
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: run scripts/test (it installs Debian's "
                    "chromium) or `apt-get install chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN")
    pg = context.new_page()
    pg.set_default_timeout(15000)
    yield pg
    context.close()
