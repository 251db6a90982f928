"""The FreeSWITCH 1.10 configuration: templates rendered from the project's settings and data.

`python -m fs_conf render --dest /etc/freeswitch --node NAME` writes a node's files; the
console serves the parts that follow its data (gateways, agents, inbound DIDs) through
mod_xml_curl using the same templates. See fs_conf/README.md.
"""
