"""话术设计: create, validate and version scripts, upload prompts, the test-call box."""

import io
import json
import re

import numpy as np
import soundfile

from core.dialogue import schema
from core.models import Script, ScriptPrompt, ScriptVersion
from tests import factories as f
from webui.extensions import db


def csrf(client, url):
    return f.csrf_from(client.get(url).get_data(as_text=True))


def create(client, name="宽带提速"):
    token = csrf(client, "/scripts/")
    resp = client.post("/scripts/", data={"name": name, "csrf_token": token})
    assert resp.status_code == 302
    return int(re.search(r"/scripts/(\d+)", resp.headers["Location"]).group(1))


def test_menu_and_create_with_an_example_version(client, world, app):
    f.login(client, "staff_a")
    assert 'href="/scripts/"' in client.get("/tasks").get_data(as_text=True)
    sid = create(client)
    page = client.get(f"/scripts/{sid}").get_data(as_text=True)
    assert "opening" in page and 'id="test-call"' in page
    with app.app_context():
        script = db.session.get(Script, sid)
        assert script.current_version == 1 and script.account_id == world["a"]


def test_save_validates_and_adds_versions(client, world, app):
    f.login(client, "admin_a")
    sid = create(client)
    token = csrf(client, f"/scripts/{sid}")
    bad = {"start": "x", "nodes": {"a": {"prompt": "hi", "branches": [
        {"intents": ["affirm"], "goto": "nowhere"}]}}}
    resp = client.post(f"/scripts/{sid}/save", data={"body": json.dumps(bad),
                                                      "csrf_token": token})
    assert resp.status_code == 400
    assert "nowhere" in resp.get_data(as_text=True)
    resp = client.post(f"/scripts/{sid}/save", data={"body": "{not json",
                                                      "csrf_token": token})
    assert resp.status_code == 400
    body = json.loads(json.dumps(schema.EXAMPLE))
    body["nodes"]["opening"]["prompt"]["text"] = "您好{姓名}，新版本。"
    resp = client.post(f"/scripts/{sid}/save", data={"body": json.dumps(body),
                                                      "csrf_token": token})
    assert resp.status_code == 302
    with app.app_context():
        versions = db.session.scalars(db.select(ScriptVersion).where(
            ScriptVersion.script_id == sid).order_by(ScriptVersion.version)).all()
        assert [v.version for v in versions] == [1, 2]
        assert "新版本" in versions[1].body["nodes"]["opening"]["prompt"]["text"]
        assert "新版本" not in versions[0].body["nodes"]["opening"]["prompt"]["text"]


def test_other_accounts_cannot_see_a_script(client, world):
    f.login(client, "admin_a")
    sid = create(client)
    other = client.application.test_client()
    f.login(other, "admin_b")
    assert other.get(f"/scripts/{sid}").status_code == 404
    agent = client.application.test_client()
    f.login(agent, "agent_a")
    assert agent.get("/scripts/").status_code == 403


def test_test_call_box_runs_the_script_on_typed_text(client, world):
    f.login(client, "staff_a")
    sid = create(client)
    token = csrf(client, f"/scripts/{sid}")
    body = json.dumps(schema.EXAMPLE, ensure_ascii=False)
    data = {"csrf_token": token, "body": body, "variables": '{"姓名": "王先生"}'}
    page = client.post(f"/scripts/{sid}/test", data={**data, "action": "restart"})
    text = page.get_data(as_text=True)
    assert "您好，请问是王先生吗" in text
    history = re.search(r'name="history" value="([^"]*)"', text).group(1)
    page = client.post(f"/scripts/{sid}/test", data={**data, "history": history.replace(
        "&#34;", '"'), "say": "这个多少钱", "action": "say"})
    text = page.get_data(as_text=True)
    assert "十元" in text and "price" in text
    history = re.search(r'name="history" value="([^"]*)"', text).group(1).replace("&#34;", '"')
    assert json.loads(history) == ["这个多少钱"]
    for say in ("嗯，你说", "可以，我有兴趣"):
        page = client.post(f"/scripts/{sid}/test", data={**data, "history": history,
                                                          "say": say, "action": "say"})
        text = page.get_data(as_text=True)
        history = re.search(r'name="history" value="([^"]*)"', text).group(1).replace(
            "&#34;", '"')
    assert "稍后会有专员联系您" in text
    assert re.search(r"<strong>A</strong>", text)
    assert "有意向" in text
    page = client.post(f"/scripts/{sid}/test", data={**data, "history": "[]",
                                                      "action": "silence"})
    assert "能听到我说话吗" in page.get_data(as_text=True)


def test_prompt_upload_is_converted_to_8k(client, world, app, settings):
    f.login(client, "admin_a")
    sid = create(client)
    token = csrf(client, f"/scripts/{sid}")
    buf = io.BytesIO()
    t = np.arange(44100) / 44100
    soundfile.write(buf, 0.3 * np.sin(2 * np.pi * 440 * t), 44100, format="FLAC")
    buf.seek(0)
    resp = client.post(f"/scripts/{sid}/prompts", data={
        "csrf_token": token, "label": "开场白", "file": (buf, "open ing.flac")},
        content_type="multipart/form-data")
    assert resp.status_code == 302
    with app.app_context():
        row = db.session.scalar(db.select(ScriptPrompt))
        assert row.label == "开场白" and row.file_name.endswith(".wav")
        assert " " not in row.file_name and 990 <= row.duration_ms <= 1010
        path = settings.dialogue.prompts_dir / str(row.account_id) / row.file_name
        assert soundfile.info(path).samplerate == 8000
        pid = row.id
    assert client.get(f"/scripts/{sid}/prompts/{pid}.wav").status_code == 200
    bad = client.post(f"/scripts/{sid}/prompts", data={
        "csrf_token": token, "file": (io.BytesIO(b"nope"), "x.mp3")},
        content_type="multipart/form-data", follow_redirects=True)
    assert "Not an audio file" in bad.get_data(as_text=True) or "无法读取" in \
        bad.get_data(as_text=True)


def test_tts_endpoint_speaks_a_line(client, world):
    from tests.dialogue.audio import require_espeak
    require_espeak()
    f.login(client, "staff_a")
    resp = client.get("/scripts/tts", query_string={"text": "您好"})
    assert resp.status_code == 200 and resp.data[:4] == b"RIFF"
