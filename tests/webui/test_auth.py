"""Login, logout, CSRF, password change, language switch, role checks."""

import pytest

from tests import factories as f

PAGES = ["/", "/tasks", "/calls", "/notifications", "/team/users", "/system/tokens",
         "/password"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_login(client, path):
    resp = client.get(path)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_wrong_password_is_refused_in_chinese(client, world):
    resp = f.login(client, "admin_a", "nope-nope")
    assert resp.status_code == 401
    assert "用户名或密码错误" in resp.get_data(as_text=True)
    assert client.get("/tasks").status_code == 302


def test_login_shows_the_menu_and_logout_ends_the_session(client, world):
    resp = f.login(client, "admin_a")
    assert resp.status_code == 302
    page = client.get("/tasks").get_data(as_text=True)
    for label in ("呼叫中台", "AI外呼", "黑名单", "呼叫设置", "话术设计", "统计看板", "客户管理",
                  "团队组织", "系统设置"):
        assert label in page
    resp = client.post("/logout", data={"csrf_token": f.csrf_from(page)})
    assert resp.status_code == 302
    assert client.get("/tasks").status_code == 302


def test_post_without_csrf_token_is_rejected(client, world):
    page = client.get("/login").get_data(as_text=True)
    assert f.csrf_from(page)
    resp = client.post("/login", data={"username": "admin_a", "password": f.PASSWORD})
    assert resp.status_code == 400
    f.login(client, "admin_a")
    assert client.post("/logout").status_code == 400
    assert client.get("/tasks").status_code == 200  # still logged in


def test_login_does_not_redirect_off_site(client, world):
    page = client.get("/login?next=//evil.example/x").get_data(as_text=True)
    resp = client.post("/login?next=//evil.example/x", data={
        "username": "admin_a", "password": f.PASSWORD, "csrf_token": f.csrf_from(page)})
    assert resp.headers["Location"] == "/"


def test_password_change(client, world):
    f.login(client, "staff_a")
    page = client.get("/password").get_data(as_text=True)
    token = f.csrf_from(page)
    bad = client.post("/password", data={"old": "wrong", "new": "newpass-99",
                                         "again": "newpass-99", "csrf_token": token})
    assert bad.status_code == 400 and "当前密码错误" in bad.get_data(as_text=True)
    short = client.post("/password", data={"old": f.PASSWORD, "new": "short",
                                           "again": "short", "csrf_token": token})
    assert "至少需要 8" in short.get_data(as_text=True)
    ok = client.post("/password", data={"old": f.PASSWORD, "new": "newpass-99",
                                        "again": "newpass-99", "csrf_token": token})
    assert ok.status_code == 302
    client.post("/logout", data={"csrf_token": token})
    assert f.login(client, "staff_a").status_code == 401
    assert f.login(client, "staff_a", "newpass-99").status_code == 302


def test_language_switch_to_english(client, world):
    f.login(client, "admin_a")
    page = client.get("/tasks").get_data(as_text=True)
    client.post("/lang/en", data={"csrf_token": f.csrf_from(page), "next": "/tasks"})
    page = client.get("/tasks").get_data(as_text=True)
    assert "AI outbound" in page and "Call records" in page and "AI外呼" not in page


def test_staff_cannot_manage_members_and_agents_see_no_tasks(client, world):
    f.login(client, "staff_a")
    assert client.get("/team/users").status_code == 403
    assert "团队组织" not in client.get("/tasks").get_data(as_text=True)
    client2 = client.application.test_client()
    f.login(client2, "agent_a")
    assert client2.get("/tasks").status_code == 403
    assert client2.get("/password").status_code == 200


def test_every_message_has_a_chinese_translation():
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    from core.settings import ROOT

    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    ids = {m[2] if isinstance(m[2], str) else m[2][0]
           for m in extract_from_dir(ROOT / "webui", method_map,
                                     keywords={"_": None, "_l": None, "gettext": None,
                                               "lazy_gettext": None})}
    with open(ROOT / "webui/translations/zh/LC_MESSAGES/messages.po", "rb") as fh:
        catalogue = read_po(fh)
    missing = sorted(i for i in ids if not (catalogue.get(i) and catalogue.get(i).string))
    assert missing == []
