"""Tables of analyst wellness: the administrator's defaults (one row), each user's own preferences
(a NULL column means "the default") and each user's viewing time per UTC day."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from meldpunt.store.models import Base


class WellnessDefaults(Base):
    __tablename__ = "wellness_defaults"
    #: always 1: there is one set of defaults
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    blur: Mapped[bool] = mapped_column(Boolean)
    greyscale: Mapped[bool] = mapped_column(Boolean)
    thumb_size: Mapped[int] = mapped_column(Integer)
    daily_limit_minutes: Mapped[int] = mapped_column(Integer)
    break_every_minutes: Mapped[int] = mapped_column(Integer)
    #: whether reveals are refused once the daily limit is passed
    block_reveal_over_limit: Mapped[bool] = mapped_column(Boolean)
    updated_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WellnessPrefs(Base):
    __tablename__ = "wellness_prefs"
    user: Mapped[str] = mapped_column(String(120), primary_key=True)
    blur: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    greyscale: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    thumb_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    daily_limit_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    break_every_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ViewingTime(Base):
    __tablename__ = "wellness_viewing"
    user: Mapped[str] = mapped_column(String(120), primary_key=True)
    #: the UTC day
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    seconds: Mapped[int] = mapped_column(Integer, default=0)
