"""The API reference at /docs and its /openapi.json, behind the same guard as every page, served offline."""

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse

router = APIRouter(include_in_schema=False)

SWAGGER = "/static/vendor/swagger-ui-5.35.0"


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the bearer key declared so 'Authorize' works in the reference page."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "TUNEBOARD_API_KEY or a key from Settings"}
        }
        schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
    return app.openapi_schema


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
