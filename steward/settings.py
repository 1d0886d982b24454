"""Typed settings, read once from the environment and an optional `.env` file.

Nothing here is read at import time: `load_settings()` is called by the wiring code (app, CLI).
A wrong value raises `SettingsError` naming the setting, so the service never starts half-set.
"""

from __future__ import annotations

import re
from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("data") / "steward.sqlite3"
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names it."""


def parse_hhmm(value: str) -> time:
    """Read a local clock time written as HH:MM."""
    match = _HHMM.match(value.strip())
    if not match:
        raise ValueError(f"expected HH:MM, got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


class Settings(BaseSettings):
    """Every setting of SPEC §8; names are the environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    DATABASE_URL: str = f"sqlite://{DEFAULT_SQLITE_PATH}"
    # SQLite's fsync policy: FULL (a power cut loses nothing) or NORMAL (faster, may lose the
    # last commits on power loss, never corrupts).
    SQLITE_SYNCHRONOUS: Literal["FULL", "NORMAL"] = "FULL"
    TIMEZONE: str = "Asia/Shanghai"
    DEFAULT_REGION: str = "CN"
    DEFAULT_LANGUAGE: str = "zh"
    PUBLIC_BASE_URL: str = "http://127.0.0.1:8000"
    LOG_LEVEL: str = "INFO"
    SIMULATOR: bool = False

    TWILIO_ACCOUNT_SID: str = ""
    TWILIO_AUTH_TOKEN: str = ""
    TWILIO_FROM: str = ""
    TWILIO_API_BASE: str = "https://api.twilio.com"
    TWILIO_MPS: float = Field(default=1.0, gt=0)

    TELEGRAM_BOT_TOKEN: str = ""
    TELEGRAM_WEBHOOK_SECRET: str = ""
    TELEGRAM_API_BASE: str = "https://api.telegram.org"
    # Where photos received by Telegram are kept (MMS photos stay at Twilio's URLs).
    MEDIA_DIR: str = "data/media"

    # Rule numbers (SPEC §3-5).
    PATROL_START: str = "08:00"
    PATROL_MINUTES: int = Field(default=120, gt=0)
    SESSION_MAX_MINUTES: int = Field(default=240, gt=0)
    NUDGE_AFTER_MIN: int = Field(default=30, ge=0)
    LEAD_ALERT_AFTER_MIN: int = Field(default=90, ge=0)
    DAY_CLOSE: str = "22:00"
    DIGEST_TIME: str = "18:00"
    REPORT_ACK_HOURS: int = Field(default=24, gt=0)
    QUIET_HOURS: str = "21:00-07:00"
    CONVERSATION_TIMEOUT_MIN: int = Field(default=30, gt=0)
    UNDO_MINUTES: int = Field(default=10, gt=0)
    POINTS_DONE_DAY: int = 10
    POINTS_REPORT_FILED: int = 2
    POINTS_REPORT_VALID: int = 3
    POINTS_FIX_VERIFIED: int = 1

    # Which department each report category goes to (shown in the leads' alert).
    REPORT_DEPARTMENTS: dict[int, str] = Field(
        default_factory=lambda: {
            1: "环卫",
            2: "市政设施",
            3: "城管",
            4: "消防安全",
            5: "城管执法",
            6: "人民调解",
            7: "派出所",
            8: "社区居委会",
            9: "社区居委会",
        }
    )

    # Delivery tuning.
    OUTBOX_MAX_ATTEMPTS: int = Field(default=8, gt=0)
    OUTBOX_POLL_SECONDS: float = Field(default=5.0, gt=0)
    # Sends in flight at once per channel (within its rate); a person's own messages always go
    # one after another. 1 sends strictly in queue order.
    OUTBOX_SENDS_IN_FLIGHT: int = Field(default=4, ge=1, le=64)
    OUTBOX_LEASE_SECONDS: int = Field(default=120, gt=0)
    MAX_WEBHOOK_BYTES: int = Field(default=64 * 1024, gt=0)

    # Scheduler (SPEC §5, §9): off in tests that drive jobs by hand; a replica standing by
    # tries the leader lock this often, so a dead leader is replaced within that time.
    SCHEDULER: bool = True
    SCHEDULER_RETRY_SECONDS: float = Field(default=15.0, gt=0)

    @field_validator("REPORT_DEPARTMENTS")
    @classmethod
    def _departments(cls, value: dict[int, str]) -> dict[int, str]:
        if any(code not in range(1, 10) for code in value):
            raise ValueError('categories are 1-9, e.g. {"1": "环卫"}')
        return value

    @field_validator("TIMEZONE")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("DEFAULT_REGION")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r}")
        return value.upper()

    @field_validator("DEFAULT_LANGUAGE")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in ("zh", "en"):
            raise ValueError("expected zh or en")
        return value

    @field_validator("PATROL_START", "DAY_CLOSE", "DIGEST_TIME")
    @classmethod
    def _clock(cls, value: str) -> str:
        parse_hhmm(value)
        return value

    @field_validator("QUIET_HOURS")
    @classmethod
    def _quiet(cls, value: str) -> str:
        if value.strip():
            start, _, end = value.partition("-")
            parse_hhmm(start)
            parse_hhmm(end)
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _db_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
            raise ValueError("expected sqlite://PATH or postgres://USER@HOST:PORT/DB")
        return value

    @field_validator("LOG_LEVEL")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.TIMEZONE)

    @property
    def twilio_enabled(self) -> bool:
        return bool(self.TWILIO_ACCOUNT_SID and self.TWILIO_AUTH_TOKEN and self.TWILIO_FROM)

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.TELEGRAM_BOT_TOKEN)

    @property
    def patrol_start(self) -> time:
        return parse_hhmm(self.PATROL_START)


def load_settings(**overrides: object) -> Settings:
    """Read settings; raise SettingsError naming each wrong setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid setting {problems}") from None
