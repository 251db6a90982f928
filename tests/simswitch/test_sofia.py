"""`sofia profile <name> killgw|rescan` as mod_sofia 1.10 answers them (mod_sofia.c
cmd_profile; the texts are its own), and what they do to the gateways a call can use."""

import json

import gevent

from tests.simswitch.conftest import scenario_file, start_switch

DOC = {"gateways": {"gw1": {"proxy": "203.0.113.5", "state": "REGED"},
                    "gw2": {"proxy": "203.0.113.6", "state": "NOREG"}},
       "outcomes": {"busy": {"result": "busy", "after": 0.2}}}


def api(client, command: str) -> str:
    return client.send(f"api {command}").data


def listed(client) -> list[str]:
    return [line.split()[0] for line in api(client, "sofia status").splitlines()
            if "\tgateway" in line]


def test_killgw_and_rescan_answer_as_mod_sofia(tmp_path, make_client):
    path = scenario_file(tmp_path, DOC)
    sw = start_switch(tmp_path, path, speed=1.0)
    try:
        fs = make_client(sw.port, "BACKGROUND_JOB")
        assert api(fs, "sofia profile external killgw") == "-ERR missing gw name\n"
        assert api(fs, "sofia profile external") == "Invalid Args!\n"
        assert api(fs, "sofia profile nosuch rescan") == "Invalid Profile [nosuch]"
        assert api(fs, "sofia profile external flush_gateways") == "-ERR Unknown command!\n"
        assert api(fs, "sofia profile external killgw gw9") == "-ERR no such gateway.\n"

        assert api(fs, "sofia profile external killgw gw1") == \
            "+OK gateway marked for deletion.\n"
        # Deleted: no longer found, no longer dialled through, though still listed until the
        # profile's gateway check removes it (after unregistering).
        assert api(fs, "sofia status gateway gw1") == "Invalid Gateway!\n"
        assert api(fs, "sofia profile external killgw gw1") == "-ERR no such gateway.\n"
        assert api(fs, "originate sofia/gateway/gw1/13800000001 &park()") == \
            "-ERR INVALID_GATEWAY\n"
        assert "external::gw1" in listed(fs)
        gevent.sleep(2.5)
        assert listed(fs) == ["external::gw2"]

        # The configuration changed meanwhile (the console's new settings for gw1).
        doc = json.loads(path.read_text())
        doc["gateways"]["gw1"]["proxy"] = "198.51.100.7"
        path.write_text(json.dumps(doc))
        # As the controller sends it: bgapi, the output comes as the BACKGROUND_JOB's body.
        job = fs.send("bgapi sofia profile external rescan").headers["Job-UUID"]
        done = fs.wait_for(lambda e: e.get("Job-UUID") == job)
        assert (done["Job-Command"], done["Job-Command-Arg"]) == \
            ("sofia", "profile external rescan")
        assert "Proxy   \tsip:198.51.100.7\n" in api(fs, "sofia status gateway gw1")
        assert sorted(listed(fs)) == ["external::gw1", "external::gw2"]
        # A gateway it already runs is not touched by a rescan: only killgw makes way.
        doc["gateways"]["gw2"]["proxy"] = "198.51.100.8"
        path.write_text(json.dumps(doc))
        assert api(fs, "sofia profile external rescan") == \
            "Reload XML [Success]\n+OK scan complete\n"
        assert "Proxy   \tsip:203.0.113.6\n" in api(fs, "sofia status gateway gw2")

        assert api(fs, "sofia profile internal killgw _all_") == \
            "+OK every gateway marked for deletion.\n"  # gateways are found across profiles
        assert api(fs, "sofia status gateway gw2") == "Invalid Gateway!\n"
        path.write_text("{not json")  # mod_xml_curl serving garbage
        assert api(fs, "sofia profile external rescan") == \
            "Reload XML [Success]\n-ERR cannot find config for profile external\n"
    finally:
        sw.stop()
