"""docs/configuration.md lists every setting as the code defines it."""

from __future__ import annotations

from pathlib import Path

import pytest

from videoqueue.cli import main
from videoqueue.settings import Settings, settings_markdown

DOC = Path(__file__).parents[1] / "docs" / "configuration.md"


def test_configuration_doc_is_current() -> None:
    assert DOC.read_text().endswith(settings_markdown()), (
        "run: videoqueue settings --markdown, and replace the table in docs/configuration.md"
    )


def test_every_setting_is_described() -> None:
    assert [name for name, f in Settings.model_fields.items() if not f.description] == []


def test_settings_command_shows_values_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIDEOQUEUE_PORT", "9123")
    monkeypatch.setenv("VIDEOQUEUE_LINK_SECRET", "s" * 40)
    monkeypatch.setenv("VIDEOQUEUE_S3_SECRET_ACCESS_KEY", "k" * 40)
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "port = 9123" in out
    assert "link_secret = '(set, hidden)'" in out and "s" * 40 not in out
    assert "s3_secret_access_key = '(set, hidden)'" in out and "k" * 40 not in out
