"""The agents blueprint: transfer groups CRUD, extensions, presence controls, the workbench,
its SIP config, the SSE screen pop stream and the notes box."""

import json
import threading

import redis

from core.models import Call, TransferGroup, TransferGroupMember, User
from core.presence import Presence, agent_channel
from tests import factories as f
from webui.extensions import db


def csrf(client, url="/agents/groups"):
    return f.csrf_from(client.get(url).get_data(as_text=True))


def give_extension(app, user_id, ext):
    with app.app_context():
        u = db.session.get(User, user_id)
        u.sip_extension, u.sip_password = ext, "sip-secret"
        db.session.commit()


def test_agents_only_see_their_workbench(client, world):
    f.login(client, "agent_a")
    assert client.get("/agents/groups").status_code == 403
    assert client.get("/agents/").status_code == 403
    page = client.get("/agents/phone")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "vendor/jssip.min.js" in html and "agents/phone.js" in html
    assert "sip-secret" not in html  # the SIP password only comes from /phone/config
    menu = client.get("/password").get_data(as_text=True)
    assert "/agents/phone" in menu


def test_staff_cannot_open_the_phone(client, world):
    f.login(client, "staff_a")
    assert client.get("/agents/phone").status_code == 403
    assert client.get("/agents/groups").status_code == 200


def test_group_crud_keeps_member_order(client, app, world):
    give_extension(app, world["agent_a"], "1001")
    with app.app_context():
        s = db.session
        acct = s.get(User, world["admin_a"]).account
        b = f.user(s, acct, "agent_b", f.Role.AGENT)
        s.commit()
        agent_b = b.id
    f.login(client, "admin_a")
    token = csrf(client)
    resp = client.post("/agents/groups", data={
        "csrf_token": token, "name": "销售组", "strategy": "order", "ring_timeout_s": "15",
        "members": [str(agent_b), str(world["agent_a"])]})
    assert resp.status_code == 302
    with app.app_context():
        g = db.session.scalar(db.select(TransferGroup))
        assert (g.name, g.strategy, g.ring_timeout_s) == ("销售组", "order", 15)
        members = db.session.scalars(db.select(TransferGroupMember)
                                     .order_by(TransferGroupMember.position)).all()
        assert [m.user_id for m in members] == [agent_b, world["agent_a"]]
        gid = g.id
    page = client.get(f"/agents/groups?edit={gid}").get_data(as_text=True)
    assert "销售组" in page
    # edit: remote needs a number
    resp = client.post("/agents/groups", data={"csrf_token": token, "group_id": gid,
                                               "name": "x", "strategy": "remote",
                                               "ring_timeout_s": "15"})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(TransferGroup, gid).name == "销售组"
    resp = client.post(f"/agents/groups/{gid}/delete", data={"csrf_token": token})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(TransferGroup)) is None


def test_other_accounts_groups_are_invisible(client, app, world):
    with app.app_context():
        g = TransferGroup(account_id=world["b"], name="B's", strategy="order")
        db.session.add(g)
        db.session.commit()
        gid = g.id
    f.login(client, "admin_a")
    assert "B&#39;s" not in client.get("/agents/groups").get_data(as_text=True)
    assert client.post(f"/agents/groups/{gid}/delete",
                       data={"csrf_token": csrf(client)}).status_code == 404


def test_admin_sets_an_extension_and_a_sip_password(client, app, world):
    f.login(client, "admin_a")
    token = csrf(client, "/agents/")
    resp = client.post(f"/agents/{world['agent_a']}/extension",
                       data={"csrf_token": token, "sip_extension": "1001"})
    assert resp.status_code == 302
    with app.app_context():
        u = db.session.get(User, world["agent_a"])
        assert u.sip_extension == "1001" and len(u.sip_password) >= 12
    assert client.post(f"/agents/{world['admin_a']}/extension",
                       data={"csrf_token": token, "sip_extension": "1002"}).status_code == 404


def test_presence_buttons_registration_and_config(client, app, world, settings):
    give_extension(app, world["agent_a"], "1001")
    f.login(client, "agent_a")
    token = csrf(client, "/agents/phone")
    h = {"X-CSRFToken": token}
    resp = client.post("/agents/me/presence", json={"state": "available"}, headers=h)
    assert resp.status_code == 200 and resp.json["presence"]["state"] == "available"
    assert client.post("/agents/me/presence", json={"state": "in_call"},
                       headers=h).status_code == 400
    assert client.post("/agents/me/registration", json={"registered": True},
                       headers=h).status_code == 200
    p = Presence(redis.Redis.from_url(settings.redis_url))
    assert p.get(world["agent_a"]).registered
    assert p.claim(world["agent_a"], "c1") == "ok"
    cfg = client.get("/agents/phone/config").json
    assert cfg["extension"] == "1001" and cfg["password"] == "sip-secret"
    assert cfg["wss_url"] == "wss://localhost:7443" and cfg["domain"] == "localhost"
    # without CSRF the presence cannot be changed cross-site
    assert client.post("/agents/me/presence", json={"state": "offline"}).status_code == 400


def test_admin_sets_an_agent_offline(client, world, settings):
    p = Presence(redis.Redis.from_url(settings.redis_url))
    p.set_state(world["agent_a"], "available")
    f.login(client, "admin_a")
    client.post(f"/agents/{world['agent_a']}/presence",
                data={"csrf_token": csrf(client, "/agents/"), "state": "offline"})
    assert p.get(world["agent_a"]).state == "offline"


def test_event_stream_sends_presence_then_published_screen_pops(client, world, settings):
    conn = redis.Redis.from_url(settings.redis_url)
    f.login(client, "agent_a")
    resp = client.get("/agents/me/events", buffered=False)
    assert resp.mimetype == "text/event-stream"
    chunks = iter(resp.response)
    first = next(chunks)
    first = first.decode() if isinstance(first, bytes) else first
    assert json.loads(first.removeprefix("data: "))["type"] == "presence"
    pop = {"type": "screen_pop", "state": "ringing", "call_uuid": "u1",
           "pop": {"phone": "138****8000"}}

    def publish():
        import time
        time.sleep(0.3)
        conn.publish(agent_channel(world["agent_a"]), json.dumps(pop))

    threading.Thread(target=publish).start()
    second = ": keep-alive"
    while second.startswith(":"):
        second = next(chunks)
        second = second.decode() if isinstance(second, bytes) else second
    assert json.loads(second.removeprefix("data: ")) == pop
    resp.close()


def test_notes_are_saved_to_the_call(client, app, world):
    with app.app_context():
        c = Call(account_id=world["a"], uuid="call-1", phone="13800138000")
        other = Call(account_id=world["b"], uuid="call-b", phone="13800138001")
        db.session.add_all([c, other])
        db.session.commit()
    f.login(client, "agent_a")
    h = {"X-CSRFToken": csrf(client, "/agents/phone")}
    resp = client.post("/agents/calls/call-1/notes", json={"notes": "想要报价"}, headers=h)
    assert resp.status_code == 200
    assert client.post("/agents/calls/call-b/notes", json={"notes": "x"},
                       headers=h).status_code == 404
    with app.app_context():
        c = db.session.scalar(db.select(Call).where(Call.uuid == "call-1"))
        assert c.agent_notes == "想要报价" and c.agent_id == world["agent_a"]
