"""Settings: defaults, .env, and wrong values named at start."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from steward.app import build_senders
from steward.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start from no settings in the environment (tortoise sets TIMEZONE=UTC when it connects)."""
    for name in ("TIMEZONE", "USE_TZ", "DATABASE_URL", "PATROL_MINUTES"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_need_no_credentials() -> None:
    settings = load_settings(_env_file=None)
    assert settings.DATABASE_URL.startswith("sqlite://")
    assert (settings.TIMEZONE, settings.DEFAULT_REGION, settings.DEFAULT_LANGUAGE) == (
        "Asia/Shanghai",
        "CN",
        "zh",
    )
    assert (settings.PATROL_MINUTES, settings.SESSION_MAX_MINUTES, settings.TWILIO_MPS) == (
        120,
        240,
        1.0,
    )
    assert not settings.twilio_enabled and not settings.telegram_enabled


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TIMEZONE", "Mars/Olympus"),
        ("DEFAULT_REGION", "XX"),
        ("DEFAULT_LANGUAGE", "fr"),
        ("PATROL_START", "25:00"),
        ("QUIET_HOURS", "nine-to-five"),
        ("TWILIO_MPS", "0"),
        ("PATROL_MINUTES", "two hours"),
        ("DATABASE_URL", "mysql://root@localhost/x"),
    ],
)
def test_a_wrong_value_is_named(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings(_env_file=None)


def test_dot_env_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("TIMEZONE=Europe/Berlin\nPATROL_MINUTES=90\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert (settings.TIMEZONE, settings.PATROL_MINUTES) == ("Europe/Berlin", 90)


def test_channels_without_credentials_are_off_and_say_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        senders = build_senders(load_settings(_env_file=None, TWILIO_ACCOUNT_SID="AC1"))
    assert senders == {}
    assert "SMS channel off" in caplog.text and "TWILIO_AUTH_TOKEN" in caplog.text
    assert "Telegram channel off" in caplog.text


def run_steward(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steward.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def test_the_command_names_a_wrong_setting_without_a_traceback(tmp_path: Path) -> None:
    done = run_steward("serve", TIMEZONE="Nowhere/Town", DATABASE_URL=f"sqlite://{tmp_path}/x.db")
    assert done.returncode != 0
    assert "TIMEZONE" in done.stderr
    assert "Traceback" not in done.stderr


def test_parse_prints_how_a_text_is_read() -> None:
    done = run_steward("parse", "报　４　楼道堆放杂物")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "intent": "report",
        "category": 4,
        "description": "楼道堆放杂物",
    }
