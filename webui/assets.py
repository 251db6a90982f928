"""Copy the console's front-end files from webui/node_modules into webui/static/vendor.

Run by scripts/setup.sh after `npm ci`; the console serves only these local copies.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (package file, file under static/vendor)
ASSETS = (
    ("bootstrap/dist/css/bootstrap.min.css", "bootstrap.min.css"),
    ("bootstrap/dist/js/bootstrap.bundle.min.js", "bootstrap.bundle.min.js"),
    ("bootstrap-icons/font/bootstrap-icons.min.css", "bootstrap-icons.min.css"),
    ("bootstrap-icons/font/fonts/bootstrap-icons.woff2", "fonts/bootstrap-icons.woff2"),
    ("bootstrap-icons/font/fonts/bootstrap-icons.woff", "fonts/bootstrap-icons.woff"),
    ("chart.js/dist/chart.umd.min.js", "chart.umd.min.js"),
)
# Packages published only as CommonJS (JsSIP has no browser build on npm): bundled with
# esbuild (a devDependency) into one script. (entry under node_modules, global name, file)
BUNDLES = (
    ("jssip/lib/JsSIP.js", "JsSIP", "jssip.min.js"),
)


def bundle(node_modules: Path, vendor: Path) -> list[Path]:
    """Build each bundle when missing or older than its package; raise FileNotFoundError
    when npm did not install the package or esbuild, RuntimeError when esbuild fails."""
    written = []
    esbuild = node_modules / ".bin" / "esbuild"
    for entry, name, target in BUNDLES:
        src = node_modules / entry
        if not src.is_file():
            raise FileNotFoundError(f"{src} is missing: run `npm ci` in webui/")
        dst = vendor / target
        package_json = node_modules / entry.split("/")[0] / "package.json"
        if not dst.exists() or dst.stat().st_mtime < package_json.stat().st_mtime:
            if not esbuild.exists():
                raise FileNotFoundError(f"{esbuild} is missing: run `npm ci` in webui/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(
                [str(esbuild), str(src), "--bundle", "--format=iife", f"--global-name={name}",
                 "--platform=browser", "--minify", "--log-level=error", f"--outfile={dst}"],
                capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"esbuild could not bundle {entry}: {done.stderr.strip()}")
        written.append(dst)
    return written


def install(node_modules: Path = HERE / "node_modules",
            vendor: Path = HERE / "static" / "vendor") -> list[Path]:
    """Copy every asset; raise FileNotFoundError naming the first one npm did not install."""
    written = []
    for source, target in ASSETS:
        src = node_modules / source
        if not src.is_file():
            raise FileNotFoundError(f"{src} is missing: run `npm ci` in webui/")
        dst = vendor / target
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime:
            shutil.copy2(src, dst)
        written.append(dst)
    return written + bundle(node_modules, vendor)


if __name__ == "__main__":
    try:
        install()
    except (FileNotFoundError, RuntimeError) as exc:
        sys.exit(f"[setup] {exc}")
