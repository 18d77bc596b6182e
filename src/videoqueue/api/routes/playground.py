"""The playground: a static page at `/` that queues videos through this server's Venice routes.

The page, its script and its style ship in `videoqueue/web/`; the script and style are served
under `/playground/`. The browser fetches nothing from anywhere else, which the page's
Content-Security-Policy enforces.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse

# `blob:` for the finished MP4, which the page fetches with the key and plays from memory (a
# blob URL is made by the page's own script; reading one back counts as a connection).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' blob:; "
    "media-src 'self' blob:; img-src 'self' data: blob:; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# `no-cache`: a browser revalidates, so a new version of the page is never mixed with old assets.
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    **ASSET_HEADERS,
}
ASSETS = {
    "playground.js": "text/javascript; charset=utf-8",
    "failures.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}

router = APIRouter(include_in_schema=False)


def _web_file(name: str, media_type: str, headers: dict[str, str]) -> FileResponse:
    return FileResponse(
        str(files("videoqueue") / "web" / name), media_type=media_type, headers=headers
    )


@router.get("/")
async def playground_page() -> FileResponse:
    """The playground page."""
    return _web_file("index.html", "text/html; charset=utf-8", PAGE_HEADERS)


@router.get("/playground/{name}")
async def playground_asset(name: str) -> FileResponse:
    """The page's script or style."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404)
    return _web_file(name, media_type, ASSET_HEADERS)
