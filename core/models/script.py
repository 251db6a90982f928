"""Scripts (话术): a named dialogue whose body is versioned; calls pin the version they ran."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import AccountOwned, Base, JSONType


class Script(AccountOwned, Base):
    __tablename__ = "script"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    current_version: Mapped[int] = mapped_column(Integer, default=0)


class ScriptVersion(AccountOwned, Base):
    __tablename__ = "script_version"
    __table_args__ = (UniqueConstraint("script_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    script_id: Mapped[int] = mapped_column(ForeignKey("script.id", ondelete="CASCADE"),
                                           index=True)
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))


class ScriptPrompt(AccountOwned, Base):
    """A recorded prompt uploaded for a script, converted to 8 kHz mono WAV under
    PROMPTS_DIR/<account_id>/<file_name>; nodes refer to it by file name."""

    __tablename__ = "script_prompt"
    __table_args__ = (UniqueConstraint("account_id", "file_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    script_id: Mapped[int | None] = mapped_column(
        ForeignKey("script.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(120))
    file_name: Mapped[str] = mapped_column(String(160))
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
