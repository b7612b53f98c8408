"""The ASGI application: ``uvicorn app.main:app``."""

from __future__ import annotations

import asyncio
import functools
import gzip
from pathlib import Path

import anyio
import orjson
import plotly
import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.gzip import GZipMiddleware

from . import __version__
from .api import errors, heavy
from .api.routes import router
from .api.train import router as train_router
from .api.quiz import router as quiz_router
from .api.labs import router as labs_router
from .api.schemas import BPTTRequest
from .api.stream import KeepTransport
from .presets import load_all
from .runtime import tune_gil, tune_malloc
from .security import RateLimit, SecurityHeaders, WorkBudget
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


@functools.cache
def _plotly_gz() -> bytes:
    """plotly.min.js gzipped once, at the first request (4.8 MB → 1.5 MB, level 9, ~0.3 s)."""
    return gzip.compress(PLOTLY_JS.read_bytes(), compresslevel=9, mtime=0)


class RootPathPrefix:
    """Serve under a sub-path (BPTT_ROOT_PATH, else the ASGI root_path a server was started
    with), whatever the server and the proxy do with it. The ASGI spec (and Starlette's
    routing) wants ``path`` to be the full path and ``root_path`` its prefix. What arrives:

    - uvicorn ≥ 0.26 started with a root path (``bptt-explorer`` passes BPTT_ROOT_PATH as
      uvicorn's ``root_path``; ``uvicorn --root-path /bptt`` does the same) prepends it to
      every path itself: /bptt/healthz from a proxy that keeps the prefix arrives as
      /bptt/bptt/healthz, /healthz from one that strips it as /bptt/healthz;
    - plain ``uvicorn`` without ``--root-path`` passes the path as it came: /bptt/healthz or
      /healthz.

    So: take off the root_path the server put in front (if it did), then put the sub-path in
    front unless the path already starts with it. Only the path-only shapes /x and /bptt/x
    are possible then, and both reach the same route."""

    def __init__(self, app, root_path: str = "") -> None:
        self.app = app
        self.root = root_path.rstrip("/")

    def _normal(self, scope) -> dict:
        given = scope.get("root_path", "") or ""
        root = self.root or given.rstrip("/")
        if not root:
            return scope
        path = scope["path"]
        raw = scope.get("raw_path")
        if given and (path == given or path.startswith(given.rstrip("/") + "/")):  # the server prepended it
            cut = len(given.rstrip("/"))
            path = path[cut:] or "/"
            if raw is not None and raw.startswith(given.rstrip("/").encode()):
                raw = raw[cut:] or b"/"
        if not (path == root or path.startswith(root + "/")):  # a proxy stripped it (or none was in front)
            path = root + path
            if raw is not None:
                raw = root.encode() + raw
        return {**scope, "root_path": root, "path": path, "raw_path": raw}

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope = self._normal(scope)
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


class App(FastAPI):
    """FastAPI with the security headers outside everything, Starlette's ServerErrorMiddleware
    (which answers a 500) included: ``add_middleware`` can only place middleware inside it."""

    def build_middleware_stack(self):
        return SecurityHeaders(super().build_middleware_stack(), self.state.settings)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = App(
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
    app.include_router(quiz_router)
    app.include_router(labs_router)

    async def start_heavy_processes() -> None:
        # (app/api/heavy.py) one per slot, started now and importing while the worker serves:
        # spawning takes a second or more (on a loaded machine, tens), which the first large
        # request would otherwise wait; the worker's own start does not wait for them
        heavy.begin()
        asyncio.get_running_loop().run_in_executor(None, heavy.warm, settings.max_concurrent, settings.heavy_nice)

    app.router.on_startup.append(start_heavy_processes)
    app.router.on_shutdown.append(heavy.stop)
    templates = Jinja2Templates(directory=TEMPLATES_DIR)

    @app.get("/", include_in_schema=False)
    async def page(request: Request) -> Response:
        return templates.TemplateResponse(
            request, "index.html",
            {"version": __version__, "default_language": settings.default_language,
             "root": request.scope.get("root_path", "").rstrip("/"),
             "limits": {"T": settings.max_t, "n": settings.max_n, "m": settings.max_m, "p": settings.max_p}},
        )

    @app.get("/train", include_in_schema=False)
    async def train_page(request: Request) -> Response:
        """The training view (issue 13): play, pause, step and reset a run of POST /api/v1/train."""
        return templates.TemplateResponse(
            request, "train.html",
            {"version": __version__, "default_language": settings.default_language,
             "root": request.scope.get("root_path", "").rstrip("/"),
             "limits": {"T": settings.max_t, "n": settings.max_n, "m": settings.max_m, "B": settings.max_batch}},
        )

    @app.get("/labs", include_in_schema=False)
    async def labs_page(request: Request) -> Response:
        return templates.TemplateResponse(
            request, "labs.html",
            {"version": __version__, "default_language": settings.default_language,
             "root": request.scope.get("root_path", "").rstrip("/"),
             "train_max_runs": settings.train_max_runs},
        )

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js(request: Request) -> Response:
        cache = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            # compressed once, in a thread: ~0.3 s of one core that must not stall the event loop
            body = await anyio.to_thread.run_sync(_plotly_gz)
            return Response(body, media_type="text/javascript", headers={**cache, "Content-Encoding": "gzip"})
        return FileResponse(PLOTLY_JS, media_type="text/javascript", headers=cache)

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
    if settings.gzip_level:
        # API JSON of floats compresses about 2× at a cost of ~30 ms a MB at level 1 (README)
        app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=settings.gzip_level)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origin_list, allow_methods=["GET", "POST"],
            allow_headers=["content-type"], expose_headers=["server-timing"],
        )
    # always: a server started with a root path (uvicorn --root-path) needs it even without the setting
    app.add_middleware(RootPathPrefix, root_path=settings.root_path)
    if settings.rate_limit_per_minute:
        app.add_middleware(RateLimit, per_minute=settings.rate_limit_per_minute)
    app.state.work_budget = WorkBudget(settings.rate_limit_work_per_minute) if settings.rate_limit_work_per_minute else None
    # outside Starlette's own outermost middleware (ServerErrorMiddleware wraps send): it must
    # see the server's own send callable
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: KeepTransport(build())  # type: ignore[method-assign]
    return app


tune_malloc()
tune_gil()
app = create_app()
