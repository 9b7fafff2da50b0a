"""``GET /docs``: the API reference as one HTML page built from the app's OpenAPI schema, with no script.

FastAPI's own ``/docs`` (Swagger UI) loads its JavaScript and CSS from a CDN, so it is blank offline; this page
needs nothing but the server. ``/openapi.json`` stays the machine-readable schema.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

__all__ = ["add_api_docs", "render_api_docs"]

_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;color:#222}"
    "h2{font-size:1.05rem;margin:1.6rem 0 .3rem}code{background:#f3f3f3;padding:0 .2rem}"
    "table{border-collapse:collapse;width:100%;display:block;overflow-x:auto}"
    "td,th{border-bottom:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}"
    ".m{font-weight:bold;color:#0a5}"
)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _schema_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return ref.rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_schema_name(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_schema_name(schema.get('items', {}))}"
    return str(schema.get("type", "any"))


def _fields(name: str, schemas: dict[str, Any]) -> str:
    model = schemas.get(name, {})
    rows = [
        f"<tr><td><code>{_esc(field)}</code></td><td>{_esc(_schema_name(spec))}</td>"
        f"<td>{_esc(spec.get('description', ''))}</td></tr>"
        for field, spec in model.get("properties", {}).items()
    ]
    if not rows:
        return ""
    return f"<h3 id='{_esc(name)}'>{_esc(name)}</h3><table>{''.join(rows)}</table>"


def render_api_docs(schema: dict[str, Any]) -> str:
    """Return the reference page of an OpenAPI ``schema``: each route, its parameters, bodies and models."""
    schemas: dict[str, Any] = schema.get("components", {}).get("schemas", {})
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
        f"content='width=device-width,initial-scale=1'><title>{_esc(schema['info']['title'])} API</title>"
        f"<style>{_STYLE}</style></head><body><h1>{_esc(schema['info']['title'])} API</h1>"
        f"<p>{_esc(schema['info'].get('summary', ''))} Money is USD as decimal strings. "
        "The schema: <a href='openapi.json'>openapi.json</a>.</p>"
    ]
    used: list[str] = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(f"<h2><span class='m'>{_esc(method.upper())}</span> <code>{_esc(path)}</code></h2>")
            parts.append(f"<p>{_esc(op.get('description') or op.get('summary', ''))}</p>")
            params = op.get("parameters", [])
            if params:
                rows = "".join(
                    f"<tr><td><code>{_esc(p['name'])}</code></td><td>{_esc(p.get('in', ''))}</td>"
                    f"<td>{_esc(_schema_name(p.get('schema', {})))}</td><td>{_esc(p.get('description', ''))}</td></tr>"
                    for p in params
                )
                parts.append(f"<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>{rows}</table>")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                used.append(_schema_name(body))
                parts.append(f"<p>Body: <a href='#{_esc(_schema_name(body))}'>{_esc(_schema_name(body))}</a></p>")
            for status, reply in op.get("responses", {}).items():
                content = reply.get("content", {}).get("application/json", {}).get("schema")
                shown = ""
                if content:
                    shown = _schema_name(content)
                    used.append(shown)
                    shown = f": <a href='#{_esc(shown)}'>{_esc(shown)}</a>"
                parts.append(f"<p>{_esc(status)} {_esc(reply.get('description', ''))}{shown}</p>")
    parts.append("<h1>Models</h1>")
    parts.extend(_fields(name, schemas) for name in schemas)
    parts.append("</body></html>")
    return "".join(parts)


def add_api_docs(app: FastAPI) -> None:
    """Register ``GET /docs`` on ``app``."""

    def get_docs() -> HTMLResponse:
        return HTMLResponse(
            render_api_docs(app.openapi()),
            headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
        )

    app.add_api_route("/docs", get_docs, methods=["GET"], include_in_schema=False)
