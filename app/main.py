"""The ASGI application: ``uvicorn app.main:app``."""

from __future__ import annotations

from pathlib import Path

import orjson
import plotly
import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from . import __version__
from .api import errors
from .api.routes import router
from .api.train import router as train_router
from .api.schemas import BPTTRequest
from .presets import load_all
from .runtime import tune_malloc
from .security import RateLimit, SecurityHeaders
from .settings import Settings, get_settings

HERE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    """static/ or templates/: inside the package when installed from a wheel, else at the top
    of the source tree (a checkout, or an editable install)."""
    inside = HERE / name
    return inside if inside.is_dir() else HERE.parent / name


STATIC_DIR = _data_dir("static")
TEMPLATES_DIR = _data_dir("templates")
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class RootPathPrefix:
    """Serve under BPTT_ROOT_PATH: set the ASGI root_path, and behind a proxy that strips the
    sub-path (/bptt/x → /x) put it back, so that routes and static mounts see the full path as
    the ASGI spec has it; a proxy that keeps it is untouched."""

    def __init__(self, app, root_path: str) -> None:
        self.app = app
        self.root = root_path.rstrip("/")

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "root_path": self.root}
            if not scope["path"].startswith(self.root + "/") and scope["path"] != self.root:
                scope["path"] = self.root + scope["path"]
                scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


def _openapi(app: FastAPI) -> dict:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes,
        servers=app.servers or None,  # FastAPI adds the root path here, for Swagger's "Try it out"
    )
    req = BPTTRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    comps.update(req.pop("$defs", {}))
    comps["BPTTRequest"] = req
    body = schema["paths"]["/api/v1/bptt"]["post"]["requestBody"]["content"]["application/json"]
    body["examples"] = {
        p.id: {"summary": p.title["en"], "description": p.description["en"], "value": p.request}
        for p in app.state.presets.values()
    }
    if "note-003" in app.state.presets:
        body["examples"]["fields"] = {
            "summary": "Only the δ table and the gradients (fields)",
            "description": "Course note 003's sequence, answered with the fields that describe the "
            "request and delta and grads only.",
            "value": app.state.presets["note-003"].request | {"fields": ["delta", "grads"]},
        }
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="BPTT Explorer",
        version=__version__,
        description=(
            "Backpropagation Through Time, visible and checkable: every hidden state, every error "
            "term δₜ,ₖ = ∂Lₜ/∂zₖ and the gradients of the shared weights as sums over the "
            "unrolled copies. Notation and formulas: see the README."
        ),
        docs_url=None,  # served below from local files: no CDN, no inline script
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.presets = load_all(settings)
    app.state.presets_index = orjson.dumps([p.summary() for p in app.state.presets.values()])
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    errors.install(app)
    app.include_router(router)
    app.include_router(train_router)
    templates = Jinja2Templates(directory=TEMPLATES_DIR)

    @app.get("/", include_in_schema=False)
    async def page(request: Request) -> Response:
        return templates.TemplateResponse(
            request, "index.html",
            {"version": __version__, "default_language": settings.default_language,
             "root": request.scope.get("root_path", "").rstrip("/")},
        )

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> Response:
        return FileResponse(PLOTLY_JS, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> Response:
        return templates.TemplateResponse(
            request, "docs.html", {"root": request.scope.get("root_path", "").rstrip("/")}
        )

    app.mount("/static/swagger-ui", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", summary="Liveness and readiness")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/version", summary="Versions of the app and its numerical stack")
    async def version() -> dict:
        import numpy

        return {"version": __version__, "api": "v1", "numpy": numpy.__version__, "plotly": plotly.__version__}

    # outermost last: the rate limit answers before anything else runs
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origin_list, allow_methods=["GET", "POST"],
            allow_headers=["content-type"], expose_headers=["server-timing"],
        )
    if settings.root_path.rstrip("/"):
        app.add_middleware(RootPathPrefix, root_path=settings.root_path)
    app.add_middleware(SecurityHeaders, settings=settings)
    if settings.rate_limit_per_minute:
        app.add_middleware(RateLimit, per_minute=settings.rate_limit_per_minute)
    return app


tune_malloc()
app = create_app()
