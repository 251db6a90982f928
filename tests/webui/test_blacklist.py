"""黑名单 pages: groups with a release time, add (by hand and from a call), filter by import
time, bulk delete and move, xlsx import and formula-safe export, CSRF, scoping."""

import io
from datetime import timedelta

from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from core import clock
from core.models import BlacklistEntry, BlacklistGroup, Call
from tests import factories as f
from webui.extensions import db


def _token(client, path="/blacklist/"):
    return f.csrf_from(client.get(path).get_data(as_text=True))


def _group(app, account_id, name="投诉", release_days=None):
    with app.app_context():
        g = BlacklistGroup(account_id=account_id, name=name, release_days=release_days)
        db.session.add(g)
        db.session.commit()
        return g.id


def _entries(app):
    with app.app_context():
        return {e.phone: e for e in db.session.scalars(select(BlacklistEntry))}


def test_default_group_add_filter_and_release_days(app, client, world):
    f.login(client, "staff_a")
    page = client.get("/blacklist/").get_data(as_text=True)
    assert "默认分组" in page or "Default group" in page
    token = _token(client)
    resp = client.post("/blacklist/groups", data={"csrf_token": token, "name": "七天",
                                                  "release_days": "7"})
    assert resp.status_code == 302
    with app.app_context():
        gid = db.session.scalar(select(BlacklistGroup.id).where(BlacklistGroup.name == "七天"))
    resp = client.post("/blacklist/add", data={
        "csrf_token": token, "group_id": gid, "phones": "13812345678\n138 1234 5679\nbad",
        "reason": "投诉"}, follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert "13812345678" in page and "13812345679" in page
    entries = _entries(app)
    assert set(entries) == {"13812345678", "13812345679"}
    assert entries["13812345678"].expires_at > clock.now() + timedelta(days=6)
    # Filter by import time: nothing was imported yesterday.
    yesterday = (clock.now() - timedelta(days=2)).date().isoformat()
    page = client.get(f"/blacklist/?until={yesterday}").get_data(as_text=True)
    assert "13812345678" not in page
    page = client.get(f"/blacklist/?since={yesterday}&phone=5679").get_data(as_text=True)
    assert "13812345679" in page and "13812345678" not in page


def test_add_from_a_call_and_no_post_without_csrf(app, client, world):
    gid = _group(app, world["a"])
    with app.app_context():
        call = Call(account_id=world["a"], uuid="u1", phone="13900000001")
        db.session.add(call)
        db.session.commit()
        call_id = call.id
    f.login(client, "admin_a")
    assert client.post("/blacklist/add", data={"group_id": gid, "call_id": call_id}) \
        .status_code == 400  # CSRF
    page = client.get(f"/blacklist/add?call_id={call_id}&next=/calls").get_data(as_text=True)
    assert "13900000001" in page
    resp = client.post("/blacklist/add", data={"csrf_token": f.csrf_from(page), "group_id": gid,
                                               "call_id": call_id, "next": "/calls"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/calls")
    assert _entries(app)["13900000001"].source == "call"
    # admin_a also sees sub-account A1, but a call of A1 goes only into A1's own groups
    with app.app_context():
        sub_call = Call(account_id=world["a1"], uuid="u2", phone="13900000002")
        db.session.add(sub_call)
        db.session.commit()
        sub_call_id = sub_call.id
    resp = client.post("/blacklist/add", data={"csrf_token": f.csrf_from(page),
                                               "group_id": gid, "call_id": sub_call_id})
    assert resp.status_code == 404 and "13900000002" not in _entries(app)


def test_bulk_move_and_delete_and_other_accounts_are_unreachable(app, client, world):
    g1, g2 = _group(app, world["a"], "一"), _group(app, world["a"], "二")
    other = _group(app, world["b"], "B的")
    with app.app_context():
        from core import blacklist
        blacklist.add(db.session, world["a"], g1, ["13800000001", "13800000002"])
        blacklist.add(db.session, world["b"], other, ["13800000009"])
        db.session.commit()
    entries = _entries(app)
    ids = [entries["13800000001"].id, entries["13800000002"].id, entries["13800000009"].id]
    f.login(client, "admin_a")
    token = _token(client)
    client.post("/blacklist/bulk", data={"csrf_token": token, "action": "move",
                                         "target_group": g2, "ids": ids})
    entries = _entries(app)
    assert entries["13800000001"].group_id == g2 and entries["13800000009"].group_id == other
    assert client.post("/blacklist/bulk", data={"csrf_token": token, "action": "move",
                                                "target_group": other, "ids": ids}
                       ).status_code == 404
    client.post("/blacklist/bulk", data={"csrf_token": token, "action": "delete", "ids": ids})
    assert set(_entries(app)) == {"13800000009"}  # B's number is untouched
    assert "13800000009" not in client.get("/blacklist/").get_data(as_text=True)


def test_import_and_formula_safe_export(app, client, world):
    gid = _group(app, world["a"])
    wb = Workbook()
    ws = wb.active
    ws.append(["手机号", "备注", "释放时间"])
    ws.append(["13800000001", "=HYPERLINK(\"http://evil\")", None])
    ws.append([13800000002, "+cmd", "2020-01-01 00:00"])  # already released
    ws.append(["nope", "", None])
    ws["B2"].data_type = "s"  # a text cell that looks like a formula (openpyxl guessed one)
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    f.login(client, "admin_a")
    resp = client.post("/blacklist/import", data={
        "csrf_token": _token(client), "group_id": gid,
        "file": (buf, "bl.xlsx")}, content_type="multipart/form-data", follow_redirects=True)
    assert resp.status_code == 200
    entries = _entries(app)
    assert set(entries) == {"13800000001", "13800000002"}
    assert entries["13800000002"].expires_at < clock.now()
    assert entries["13800000001"].source == "import"

    resp = client.get(f"/blacklist/export.xlsx?group={gid}")
    assert resp.status_code == 200
    rows = list(load_workbook(io.BytesIO(resp.data)).active.iter_rows(values_only=True))
    assert rows[0][0] == "手机号"
    by_phone = {r[0]: r for r in rows[1:]}
    assert by_phone["13800000001"][2] == "'=HYPERLINK(\"http://evil\")"
    assert by_phone["13800000002"][2] == "'+cmd" and by_phone["13800000002"][6] == "已释放"
    page = client.get("/blacklist/?state=live").get_data(as_text=True)
    assert "13800000001" in page and "13800000002" not in page


def test_agents_cannot_open_the_blacklist(app, client, world):
    f.login(client, "agent_a")
    assert client.get("/blacklist/").status_code == 403
