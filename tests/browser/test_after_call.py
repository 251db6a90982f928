"""The blacklist and after-call pages at phone width, in headless Chromium."""

import pytest

from tests.browser.test_console_shell import login

pytestmark = pytest.mark.browser

PAGES = ["/blacklist/", "/blacklist/add", "/after-call/rules", "/after-call/templates",
         "/after-call/push-groups", "/after-call/allocation", "/after-call/quotas",
         "/after-call/messages", "/after-call/providers"]


def test_pages_fit_a_phone_and_the_blacklist_works(page, console):
    page.set_viewport_size({"width": 375, "height": 740})
    login(page, console)
    for path in PAGES:
        page.goto(console["url"] + path)
        overflow = page.evaluate(
            "document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, overflow)
    page.goto(console["url"] + "/blacklist/add")
    page.fill("#phones", "13812345678\n13812345679")
    page.click("#bl-add-form button")
    page.wait_for_url("**/blacklist/?group=*")
    assert page.locator("#bl-entries tbody tr").count() == 2
    page.check("#bl-entries thead input[type=checkbox]")
    page.once("dialog", lambda d: d.accept())
    page.click("#bl-bulk button[value=delete]")
    page.wait_for_load_state()
    assert "13812345678" not in page.locator("#bl-entries").inner_text()
