"""The API reference at /docs and its /openapi.json, behind the same guard as every page, served offline."""

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from app.web.openapi import build_openapi

router = APIRouter(include_in_schema=False)

SWAGGER = "/static/vendor/swagger-ui-5.35.0"
FAVICON = Path(__file__).resolve().parent.parent / "static" / "favicon.svg"


@router.get("/openapi.json")
def openapi(request: Request):
    """The OpenAPI description of /api and /v1."""
    return JSONResponse(build_openapi(request.app))


@router.get("/docs")
def docs():
    """Swagger UI, vendored (no CDN), started by static/docs.js."""
    return HTMLResponse(
        f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tuneboard API</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{SWAGGER}/swagger-ui.css"></head>
<body><p style="font-family:system-ui;margin:12px 20px"><a href="/">← Tuneboard</a></p><div id="swagger-ui"></div>
<script src="{SWAGGER}/swagger-ui-bundle.js"></script><script src="/static/docs.js"></script></body></html>"""
    )


@router.get("/favicon.ico")
def favicon():
    """The site icon, for browsers that ask /favicon.ico before reading the page's <link rel="icon">."""
    return FileResponse(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
