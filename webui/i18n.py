"""zh-CN first, English second. Message ids are English; webui/translations holds the Chinese
catalogue, compiled into DATA_DIR on start so no binary file lives in the repository."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import current_app, request, session
from flask_login import current_user

SOURCE = Path(__file__).resolve().parent / "translations"
LOCALES = {"zh": "简体中文", "en": "English"}
DEFAULT_LOCALE = "zh"


def compile_catalogues(target: Path) -> Path:
    """Compile every .po under webui/translations into `target` when stale; return target."""
    for po_path in SOURCE.glob("*/LC_MESSAGES/messages.po"):
        mo_path = target / po_path.relative_to(SOURCE).with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as src:
            catalogue = read_po(src)
        tmp = mo_path.with_suffix(".tmp")
        with tmp.open("wb") as dst:
            write_mo(dst, catalogue)
        tmp.replace(mo_path)  # several processes may start at once
    return target


def select_locale() -> str:
    """Explicit choice in the session, then the user's saved locale, then the browser."""
    if session.get("lang") in LOCALES:
        return session["lang"]
    if current_user and current_user.is_authenticated and current_user.locale in LOCALES:
        return current_user.locale
    if request:
        best = request.accept_languages.best_match(list(LOCALES))
        if best:
            return best
    return current_app.config.get("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
