"""python -m fs_conf render --dest DIR [--node NAME] [--console-url URL]
python -m fs_conf check DIR

`render` writes a node's configuration (settings from the environment / .env) and checks it;
`check` runs fs_conf.check on a configuration directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.settings import settings_or_exit
from fs_conf.check import check_tree
from fs_conf.render import RenderError, default_console_url, pick_node, render_node, write_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fs_conf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="write a node's configuration into DIR")
    render.add_argument("--dest", required=True, type=Path,
                        help="FreeSWITCH's configuration directory, e.g. /etc/freeswitch")
    render.add_argument("--node", help="FS_NODES name (required when there are several)")
    render.add_argument("--console-url",
                        help="base URL the node uses to reach the console's FreeSWITCH "
                             "endpoints (default: http://WEB_HOST:WEB_PORT/freeswitch/NODE)")
    check = sub.add_parser("check", help="check a rendered configuration directory")
    check.add_argument("dir", type=Path)
    args = parser.parse_args(argv)

    if args.command == "check":
        return _report(check_tree(args.dir))

    settings = settings_or_exit()
    try:
        node = pick_node(settings, args.node)
        files = render_node(settings, node,
                            args.console_url or default_console_url(settings, node))
    except RenderError as exc:
        print(f"fs_conf: {exc}", file=sys.stderr)
        return 2
    for path in write_files(files, args.dest):
        print(path)
    return _report(check_tree(args.dest))


def _report(problems: list[str]) -> int:
    for problem in problems:
        print(f"fs_conf check: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
