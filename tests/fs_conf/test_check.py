"""Each rule of fs_conf.check catches a broken copy of a good rendering."""

from __future__ import annotations

from fs_conf.check import check_tree


def edit(conf, rel: str, old: str, new: str) -> None:
    path = conf / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1))


def test_good_rendering_passes(rendered):
    assert check_tree(rendered) == []


def test_malformed_xml(rendered):
    edit(rendered, "dialplan/agents.xml", "</context>", "</contex>")
    assert any("dialplan/agents.xml: not well-formed" in p for p in check_tree(rendered))


def test_missing_and_wildcard_includes(rendered):
    (rendered / "directory/default.xml").unlink()
    edit(rendered, "freeswitch.xml", 'data="dialplan/agents.xml"', 'data="dialplan/*.xml"')
    problems = check_tree(rendered)
    assert "directory/default.xml: missing" in problems
    assert any("wildcard include 'dialplan/*.xml'" in p for p in problems)


def test_unset_variable(rendered):
    edit(rendered, "autoload_configs/sofia.conf.xml", "$${trunk_codecs}", "$${trunk_codec}")
    assert any("$${trunk_codec} is not set" in p for p in check_tree(rendered))


def test_configuration_name_must_match_file(rendered):
    edit(rendered, "autoload_configs/acl.conf.xml", 'name="acl.conf"', 'name="acls.conf"')
    problems = check_tree(rendered)
    assert any("acl.conf.xml: holds configuration 'acls.conf'" in p for p in problems)


def test_profile_context_must_exist(rendered):
    edit(rendered, "autoload_configs/sofia.conf.xml", 'value="agents"', 'value="default"')
    assert any("undefined context 'default'" in p for p in check_tree(rendered))


def test_no_dialplan_action_dials_a_gateway(rendered):
    edit(rendered, "dialplan/agents.xml", 'data="user/${destination_number}@$${domain}"',
         'data="sofia/gateway/gw1/${destination_number}"')
    assert any("dials out" in p for p in check_tree(rendered))


def test_trunk_calls_cannot_be_transferred(rendered):
    edit(rendered, "dialplan/public.xml", 'application="respond" data="503 Service Unavailable"',
         'application="transfer" data="1001 XML agents"')
    assert any("calls from trunks may not run 'transfer'" in p for p in check_tree(rendered))


def test_event_socket_rules(rendered):
    edit(rendered, "autoload_configs/event_socket.conf.xml", 'value="esl"', 'value="lan"')
    path = rendered / "autoload_configs/event_socket.conf.xml"
    text = path.read_text()
    start = text.index('name="password" value="') + len('name="password" value="')
    path.write_text(text[:start] + "ClueCon" + text[text.index('"', start):])
    problems = check_tree(rendered)
    assert any("default password" in p for p in problems)
    assert any("apply-inbound-acl 'lan' is not a list" in p for p in problems)
