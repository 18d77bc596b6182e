"""An API process's app factory: what it does around building the app."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from videoqueue import heap
from videoqueue.api import app, serving
from videoqueue.settings import Settings


def test_the_factory_freezes_what_start_up_built_once_the_app_is_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    steps: list[str] = []
    build = app.create_app

    def create_app(settings: Settings) -> object:
        built = build(settings)
        steps.append("app built")
        return built

    monkeypatch.setattr(app, "create_app", create_app)
    # Recorded, not run: this test process's objects stay collectable.
    monkeypatch.setattr(heap, "freeze_startup_objects", lambda: steps.append("frozen"))
    settings = Settings(data_dir=tmp_path, api_cpu_pinning=False)
    passed = {"settings": settings.model_dump(mode="json"), "parent_pid": os.getpid()}
    monkeypatch.setenv(serving.SETTINGS_ENV, json.dumps(passed))

    serving.app_from_environment()

    assert steps == ["app built", "frozen"]
