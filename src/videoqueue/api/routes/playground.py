"""The playground: a static page at `/` that queues videos through this server's Venice routes.

The page, its script and its style ship in `videoqueue/web/`; the assets are served under
`/playground/`. The browser fetches nothing from anywhere else, which the page's
Content-Security-Policy enforces.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

ASSETS_PATH = "/playground"

# `blob:` for the finished MP4, which the page fetches with the key and plays from memory (a
# blob URL is made by the page's own script; reading one back counts as a connection).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' blob:; "
    "media-src 'self' blob:; img-src 'self' data: blob:; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def playground_page() -> Response:
    """The playground page."""
    page = files("videoqueue") / "web" / "index.html"
    return FileResponse(str(page), media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def playground_assets() -> StaticFiles:
    """The page's script and style, mounted at `ASSETS_PATH`."""
    return StaticFiles(packages=[("videoqueue", "web")])
