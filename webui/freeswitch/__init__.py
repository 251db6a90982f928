"""FreeSWITCH's side door into the console: mod_xml_curl and mod_json_cdr endpoints."""

from webui.freeswitch.views import bp

__all__ = ["bp"]
