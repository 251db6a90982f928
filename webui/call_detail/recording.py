"""Serving a call's recording, to the console and to share links alike.

Only files inside RECORDINGS_DIR are served, whatever Call.recording_path says (it comes
from the switch's channel variables and the CDR). Flask's send_file(conditional=True)
answers `Range` with 206 + Content-Range (416 when unsatisfiable), which browsers' audio
players need to seek."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from flask import Response, send_file

# mimetypes says audio/x-wav on some systems; players and nosniff want the standard names.
MIME = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".opus": "audio/ogg",
        ".flac": "audio/flac"}


def locate(recordings_dir: Path, stored: str | None) -> Path | None:
    """The existing file `stored` names (absolute, or relative to `recordings_dir`) when it
    lies inside `recordings_dir` once symbolic links and `..` are resolved; None otherwise."""
    if not stored:
        return None
    try:
        root = recordings_dir.resolve()
        path = (root / stored).resolve()
    except (OSError, ValueError):  # e.g. an embedded NUL byte
        return None
    return path if path.is_relative_to(root) and path.is_file() else None


def send(path: Path, download_name: str, as_attachment: bool = False) -> Response:
    """The file as a conditional (Range, ETag, If-Modified-Since) response."""
    mimetype = MIME.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] \
        or "application/octet-stream"
    return send_file(path, mimetype=mimetype, conditional=True, etag=True,
                     as_attachment=as_attachment, download_name=download_name + path.suffix)
