"""The API reference at /docs and its /openapi.json, behind the same guard as every page, served offline."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from app.web.openapi import build_openapi

router = APIRouter(include_in_schema=False)

SWAGGER = "/static/vendor/swagger-ui-5.35.0"


@router.get("/openapi.json")
def openapi(request: Request):
    """The OpenAPI description of /api and /v1."""
    return JSONResponse(build_openapi(request.app))


@router.get("/docs")
def docs():
    """Swagger UI, vendored (no CDN), started by static/docs.js."""
    return HTMLResponse(
        f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tuneboard API</title>
<link rel="stylesheet" href="{SWAGGER}/swagger-ui.css"></head>
<body><p style="font-family:system-ui;margin:12px 20px"><a href="/">← Tuneboard</a></p><div id="swagger-ui"></div>
<script src="{SWAGGER}/swagger-ui-bundle.js"></script><script src="/static/docs.js"></script></body></html>"""
    )
