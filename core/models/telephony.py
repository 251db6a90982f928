"""Lines (线路): the SIP trunks calls go out on or come in through."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.enums import Direction
from core.models.base import AccountOwned, Base, JSONType


class Line(AccountOwned, Base):
    __tablename__ = "line"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    direction: Mapped[Direction] = mapped_column(String(16), default=Direction.OUTBOUND)
    # FreeSWITCH gateway name in the external profile; fs_conf renders it from these columns.
    gateway: Mapped[str] = mapped_column(String(64))
    fs_node: Mapped[str | None] = mapped_column(String(64))  # None: any node that is up
    caller_ids: Mapped[list] = mapped_column(JSONType, default=list)
    max_concurrency: Mapped[int] = mapped_column(Integer, default=10)
    inbound_did: Mapped[str | None] = mapped_column(String(32), index=True)
    sip_proxy: Mapped[str | None] = mapped_column(String(255))
    register: Mapped[bool] = mapped_column(Boolean, default=False)
    sip_username: Mapped[str | None] = mapped_column(String(120))
    sip_password: Mapped[str | None] = mapped_column(String(120))
    codecs: Mapped[str] = mapped_column(String(64), default="PCMA,PCMU,G722")
    params: Mapped[dict] = mapped_column(JSONType, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
