"""The README's first steps in headless Chromium (issue 11): the run command on a fresh data
directory (`manage run all`, unattended: the demo question takes its default, yes), log in
as the demo's administrator, start 演示任务, watch its progress, open the call records and a
call with its transcript and recording, the SMS in 推送转接 → 发送记录, the agent's screen
pop in 坐席工作台 (a second browser, logged in as demo-agent), and 系统设置 → 演示数据 →
删除演示数据. simswitch runs on its real clock, as a newcomer sees it.

The screenshots the README shows are written by this test to docs/screenshots/ (kept
current by the tests, not by hand)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.models import Account, Call, SmsMessage, Task
from core.settings import ROOT
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.phone_helpers import FAKE_MEDIA
from tests.conftest import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}


def shot(page, name: str, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


@pytest.fixture
def launched(tmp_path):
    """`python -m scripts.manage run all` (what scripts/run execs) on a fresh DATA_DIR, with
    no terminal: ports of its own, everything else as shipped."""
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": str(data),
           "WEB_PORT": str(free_port()), "EMBEDDED_REDIS_PORT": str(free_port()),
           "SIMSWITCH": "yes", "FS_NODES": f"sim=127.0.0.1:{free_port()}:ClueCon",
           "MEDIA_LISTEN": f"127.0.0.1:{free_port()}"}
    for name in ("REDIS_URL", "DATABASE_URL", "DEMO", "ADMIN_PASSWORD", "SIMSWITCH_SCENARIO"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "scripts.manage", "run", "all"], cwd=ROOT,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith("Logs:") or proc.poll() is not None:
            break
    out = "".join(lines)
    passwords = re.findall(r"password: (\S+)", out)
    info = {"proc": proc, "out": out, "data": data, "url": f"http://127.0.0.1:{env['WEB_PORT']}",
            "db": f"sqlite:///{data / 'callcentre.db'}",
            "admin_password": passwords[0] if passwords else None,
            "demo_password": passwords[1] if len(passwords) > 1 else None}
    yield info
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def agent_browser(browser):
    """Chromium with a fake microphone (the workbench checks for one) and audio that plays
    without a click (the recording check)."""
    other = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=CHROMIUM_ARGS + FAKE_MEDIA + ["--autoplay-policy=no-user-gesture-required"])
    yield other
    other.close()


def login(page, url: str, username: str, password: str) -> None:
    page.goto(url + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_load_state()


def wait_for(predicate, timeout: float, what: str, proc=None, step: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the launcher exited while waiting for {what}: "
                                 + proc.stderr.read()[-3000:])
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_the_readme_walk_through_on_a_fresh_clone(launched, agent_browser):
    out, url, proc = launched["out"], launched["url"], launched["proc"]
    assert "Create a demo account" in out and "yes" in out, out
    assert "Demo:" in out and "user:     demo" in out, out
    assert launched["demo_password"], out
    engine = sa.create_engine(launched["db"])

    admin = agent_browser.new_context(locale="zh-CN", viewport=VIEWPORT)
    page = admin.new_page()
    page.set_default_timeout(20000)
    agent_ctx = agent_browser.new_context(locale="zh-CN", viewport=VIEWPORT,
                                          permissions=["microphone"])
    agent = agent_ctx.new_page()
    agent.set_default_timeout(20000)

    # 1. log in as the demo's administrator: the task list (AI外呼) with 演示任务
    login(page, url, "demo", launched["demo_password"])
    page.wait_for_url("**/tasks")
    row = page.locator("#tasks tr", has_text="演示任务")
    assert "未开始" in row.inner_text(), row.inner_text()
    shot(page, "demo-1-tasks")

    # the agent opens 坐席工作台 in another browser before the campaign starts
    login(agent, url, "demo-agent", launched["demo_password"])
    agent.click("#menu >> text=坐席工作台")
    agent.wait_for_url("**/agents/phone")

    # 2. start it (开启); its progress and connect rate move while it runs
    row.locator("button:has-text('开启')").click()
    page.wait_for_url("**/tasks")
    row = page.locator("#tasks tr", has_text="演示任务")
    assert "进行中" in row.inner_text()
    started = time.monotonic()

    def answered_calls():
        with Session(engine) as s:
            return s.scalars(sa.select(Call).where(
                Call.state == "ended", Call.grade.is_not(None),
                Call.recording_path.is_not(None)).order_by(Call.id)).all()
    wait_for(lambda: len({c.grade for c in answered_calls()}) >= 4, 150,
             "calls of four grades", proc)
    page.wait_for_function(  # the list polls its figures every few seconds
        "() => !document.querySelector('#tasks tr[data-task] [data-field=rate]')"
        ".textContent.includes('—')")
    shot(page, "demo-2-running")

    # 3. 通话记录, filtered to graded calls (意向标签 A–F): status, grade, duration, turns
    page.click("#menu >> text=通话记录")
    page.wait_for_url("**/calls**")
    page.select_option("#call-filters select[name=grade]", ["A", "B", "C", "D", "E", "F"])
    page.click("#apply-filter")
    page.wait_for_load_state()
    if page.locator("#advanced").is_visible():  # the form sends every field: fold it away
        page.click("button[data-bs-target='#advanced']")
        page.locator("#advanced").wait_for(state="hidden")
    assert page.locator("#calls tbody tr .view-link").count() >= 6
    shot(page, "demo-3-records")

    # 4. a call: transcript, grade and its recording, which plays
    page.locator("#calls tbody tr .view-link").first.click()
    page.wait_for_url(re.compile(r".*/calls/\d+$"))
    assert page.locator("#transcript").inner_text().strip()
    assert page.locator("#call-grade").inner_text().strip()
    page.wait_for_function("() => document.getElementById('recording').duration > 1")
    page.evaluate("document.getElementById('recording').play()")
    page.wait_for_function("() => document.getElementById('recording').currentTime > 0.3")
    page.evaluate("document.getElementById('recording').pause()")
    shot(page, "demo-4-call", full_page=True)

    # 5. 推送转接 → 发送记录: the hang-up SMS of A and B calls, in the console's outbox
    def sms_sent():
        with Session(engine) as s:
            return s.scalar(sa.select(sa.func.count()).select_from(SmsMessage).where(
                SmsMessage.state == "sent"))
    wait_for(sms_sent, 90, "a hang-up SMS", proc)
    page.click("#menu >> text=发送记录")
    page.wait_for_url("**/after-call/messages**")
    assert "【云帆宽带】" in page.locator("#messages").inner_text()
    shot(page, "demo-5-sms")

    # 6. the agent's screen pop: a transferred call, answered by simswitch's agent 8001
    pop = agent.locator("#screen-pop")
    pop.wait_for(state="visible", timeout=120000)
    agent.wait_for_function(
        "() => document.getElementById('pop-state').textContent === '已接通'", timeout=30000)
    assert "****" in agent.locator("#pop-phone").inner_text()  # AGENT_PHONE_MASK middle
    assert "演示任务" in agent.locator("#pop-task").inner_text()
    assert "演示场景" in agent.locator("#pop-vars").inner_text()
    shot(agent, "demo-6-agent")
    with Session(engine) as s:
        took = s.scalar(sa.select(sa.func.count()).select_from(Call).where(
            Call.agent_id.is_not(None)))
    assert took >= 1
    print(f"walk-through: everything shown {time.monotonic() - started:.0f} s after 开启")

    # 7. 系统设置 → 演示数据 → 删除演示数据: one action, the demo goes, the admin stays
    page.click("#menu >> text=演示数据")
    page.wait_for_url("**/system/demo")
    shot(page, "demo-7-remove")
    page.once("dialog", lambda d: d.accept())
    page.click("#remove-demo", no_wait_after=True)  # it lets live calls end first
    page.wait_for_url("**/login**", timeout=150000)
    assert "演示数据已删除" in page.locator("body").inner_text()
    with Session(engine) as s:
        assert s.scalar(sa.select(Account).where(Account.is_demo.is_(True))) is None
        assert s.scalar(sa.select(sa.func.count()).select_from(Task)) == 0
    assert not (launched["data"] / "demo").exists()
    login(page, url, "admin", launched["admin_password"])
    page.wait_for_url("**/tasks")
    assert "演示任务" not in page.locator("#tasks").inner_text()
    time.sleep(3)  # the demo's calls still live on simswitch end without their rows
    assert proc.poll() is None, proc.stderr.read()[-3000:]
    admin.close()
    agent_ctx.close()
    engine.dispose()
