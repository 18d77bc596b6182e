"""The playground's files as the server serves them: the page at `/` under a strict
Content-Security-Policy, its assets under `/playground/`, nothing from another origin, and
every file shipped as package data."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import Env, build_env
from videoqueue.settings import Settings

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "src" / "videoqueue" / "web"


class Links(HTMLParser):
    """Every `src` and `href` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("src", "href") and value]


def test_the_page_is_served_at_the_root_under_a_strict_policy(env: Env) -> None:
    response = env.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self' blob:" in policy
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["referrer-policy"] == "no-referrer"
    assert '<label for="api-key">' in response.text
    assert "/" not in env.client.get("/openapi.json").json()["paths"]


def test_the_page_loads_only_its_own_assets(env: Env) -> None:
    links = Links()
    links.feed(env.client.get("/").text)
    assets = [link for link in links.found if not link.startswith("data:")]
    assert sorted(assets) == [
        "playground/failures.js",
        "playground/playground.css",
        "playground/playground.js",
    ]
    types = {"js": "text/javascript", "css": "text/css"}
    for asset in assets:
        response = env.client.get(f"/{asset}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(types[asset.rsplit(".", 1)[1]])
    for path in WEB.iterdir():
        assert not re.search(r"https?://", path.read_text()), f"{path.name} names another origin"


def test_an_unknown_asset_is_venices_404(env: Env) -> None:
    response = env.client.get("/playground/missing.js")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found"}


@pytest.fixture
def without_playground(settings: Settings) -> Iterator[Env]:
    """The app with the playground turned off."""
    yield from build_env(settings.model_copy(update={"playground": False}))


def test_with_the_playground_off_its_page_and_files_are_venices_404(
    without_playground: Env,
) -> None:
    client = without_playground.client
    for path in ["/", *(f"/playground/{p.name}" for p in WEB.iterdir() if p.suffix != ".html")]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json() == {"error": "Not found"}
        assert "content-security-policy" not in response.headers
    models = client.get("/api/v1/models?type=video")  # the API itself is unchanged
    assert models.status_code == 200 and models.json()["data"]
    assert "/api/v1/video/queue" in client.get("/openapi.json").json()["paths"]


def test_the_playground_is_turned_off_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().playground is True
    monkeypatch.setenv("VIDEOQUEUE_PLAYGROUND", "false")
    assert Settings().playground is False


def test_every_playground_file_ships_as_package_data() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["videoqueue"]
    for path in WEB.iterdir():
        name = f"web/{path.name}"
        assert any(fnmatch(name, pattern) for pattern in patterns), f"{name} is not shipped"
