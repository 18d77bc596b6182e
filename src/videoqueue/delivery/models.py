"""The `delivery_links` table: one row per issued link, holding its revocation and fetch counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from videoqueue.db.base import Base, UTCDateTime


class DeliveryLink(Base):
    """A `download_url` handed out for one job's output.

    The token itself is never stored: the row is found by the link id inside a token whose
    signature checked out. `window_*` is a fixed-window counter of recent GETs (for 429s).
    """

    __tablename__ = "delivery_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    max_fetches: Mapped[int] = mapped_column(Integer)
    fetch_count: Mapped[int] = mapped_column(Integer, default=0)
    last_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    window_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    window_count: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    delete_after_download: Mapped[bool] = mapped_column(Boolean, default=False)
