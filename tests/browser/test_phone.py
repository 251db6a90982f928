"""The agent workbench in headless Chromium with fake media devices: the phone fails its
registration clearly against no server, the microphone refusal is explained, and a screen
pop pushed by a real transfer (simswitch + the transfer runner in another process) shows
the customer, and its notes are saved to the call."""

import json
import subprocess
import sys

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.models import Call
from core.settings import ROOT
from tests import factories as f
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.phone_helpers import FAKE_MEDIA, agent_rows, login
from tests.conftest import free_port

pytestmark = pytest.mark.browser



@pytest.fixture
def subprocess_env(subprocess_env):
    """The console's phone points at a WebSocket port where nothing listens."""
    return {**subprocess_env, "AGENT_SIP_WSS_URL": f"ws://127.0.0.1:{free_port()}"}


def _launch(browser, args):
    """Another Chromium with other flags, from the session's one Playwright."""
    return browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=args)


@pytest.fixture
def media_browser(browser):
    other = _launch(browser, CHROMIUM_ARGS + FAKE_MEDIA)
    yield other
    other.close()


@pytest.fixture
def agent(console, subprocess_env):
    yield from agent_rows(console, subprocess_env)


def test_registration_failure_and_screen_pop_from_a_real_transfer(media_browser, console,
                                                                   agent, subprocess_env):
    context = media_browser.new_context(locale="zh-CN", permissions=["microphone"])
    page = context.new_page()
    page.set_default_timeout(20000)
    login(page, console, agent["username"], f.PASSWORD)
    assert "坐席工作台" in page.locator("#menu").inner_text()
    page.goto(console["url"] + "/agents/phone")
    error = page.locator("#phone-error")
    error.wait_for(state="visible")
    page.wait_for_function(
        "document.getElementById('phone-error').textContent.includes('无法连接 SIP 服务器')")
    assert "注册失败" in error.inner_text()
    assert page.locator("#reg-status").inner_text() == "未注册"
    assert not page.locator("#mic-error").is_visible()  # fake devices: the microphone works

    page.click("#go-available")
    page.wait_for_function(
        "document.getElementById('presence-state').dataset.state === 'available'")
    assert page.locator("#presence-state").inner_text() == "在线"

    # No SIP server here: stop the page's retries, then mark the phone registered as
    # FreeSWITCH would (simswitch models registration by scenario, not SIP).
    page.evaluate("window.ccPhone && window.ccPhone.stop()")
    page.wait_for_timeout(500)
    conn = redis.Redis.from_url(subprocess_env["REDIS_URL"])
    conn.hset(f"cc:presence:{agent['user_id']}", "registered", 1)

    driver = subprocess.Popen(
        [sys.executable, "-m", "tests.browser.transfer_driver", subprocess_env["REDIS_URL"],
         subprocess_env["DATABASE_URL"], agent["call_uuid"]],
        cwd=ROOT, env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        pop = page.locator("#screen-pop")
        pop.wait_for(state="visible")
        assert page.locator("#pop-phone").inner_text() == "138****8000"
        assert page.locator("#pop-state").inner_text() == "振铃中"
        assert "我想问一下价格" in page.locator("#pop-transcript").inner_text()
        assert "王先生" in page.locator("#pop-vars").inner_text()
        assert page.locator("#pop-grade").inner_text() == "A"
        assert "要报价" in page.locator("#pop-tags").inner_text()
        assert "春季回访" in page.locator("#pop-task").inner_text()
        page.wait_for_function(
            "document.getElementById('pop-state').textContent === '已接通'")
        page.wait_for_function(
            "document.getElementById('presence-state').dataset.state === 'in_call'")
        page.fill("#pop-notes", "客户想要报价，明天回电")
        page.click("#pop-save")
        page.wait_for_function("document.getElementById('pop-saved').textContent === '已保存'")
        out, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err[-2000:]
    record = json.loads(out.strip().splitlines()[-1])
    assert record["state"] == "success" and record["target"]["extension"] == "1001"
    with Session(agent["engine"]) as s:
        call = s.scalar(sa.select(Call).where(Call.uuid == agent["call_uuid"]))
        assert call.agent_notes == "客户想要报价，明天回电"
        assert call.transfer["state"] == "success" and call.agent_id == agent["user_id"]
    context.close()


@pytest.mark.parametrize("args,message", [
    # a (fake) microphone, but no permission: headless Chromium refuses the prompt
    (["--use-fake-device-for-media-stream"], "麦克风权限被拒绝"),
    # no microphone at all
    ([], "未找到麦克风"),
])
def test_microphone_problems_are_explained(browser, console, agent, args, message):
    other = _launch(browser, CHROMIUM_ARGS + args)
    try:
        context = other.new_context(locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(20000)
        login(page, console, agent["username"], f.PASSWORD)
        page.goto(console["url"] + "/agents/phone")
        page.locator("#mic-error").wait_for(state="visible")
        assert page.locator("#mic-error").inner_text().startswith(message)
        # the registration failure is told apart, in its own box
        page.wait_for_function(
            "document.getElementById('phone-error').textContent.includes('无法连接')")
    finally:
        other.close()
