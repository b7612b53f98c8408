"""The one settings object: every setting comes from an environment variable prefixed BPTT_
(e.g. BPTT_MAX_T=256). The README lists them all; a test fails when one is undocumented."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BPTT_", extra="ignore")

    # server
    host: str = Field("127.0.0.1", description="Address the server listens on.")
    port: int = Field(8000, description="Port the server listens on.")
    workers: int = Field(1, ge=1, description="Worker processes (bptt-explorer --workers overrides).")
    root_path: str = Field("", description="Sub-path behind a reverse proxy, e.g. /bptt.")
    keep_alive_timeout: int = Field(
        5, ge=1, description="Seconds an idle keep-alive connection is kept between requests (uvicorn's timeout_keep_alive).",
    )
    header_timeout: float = Field(
        10.0, gt=0, description="Seconds a client has to send a whole request head, from the connection's "
        "opening or the request's first byte (408 after; an idle connection is closed).",
    )
    max_header_bytes: int = Field(
        32768, ge=1024, description="Largest request head (request line and headers) in bytes (431 above).",
    )
    log_level: str = Field("info", description="uvicorn log level: critical, error, warning, info, debug.")
    gzip_level: int = Field(
        0, ge=0, le=9, description="gzip level for API responses (0: off); the page's Plotly is always sent gzipped."
    )

    # limits: checked before any large allocation; each error names its setting
    max_t: int = Field(1024, ge=1, description="Longest sequence T.")
    max_n: int = Field(512, ge=1, description="Largest input size n.")
    max_m: int = Field(256, ge=1, description="Largest hidden size m.")
    max_p: int = Field(256, ge=1, description="Largest output size p.")
    max_batch: int = Field(64, ge=1, description="Largest batch B.")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Largest request body in bytes.")
    body_timeout: float = Field(
        30.0, gt=0, description="Seconds a client has to send the whole request body (408 after)."
    )
    max_work: float = Field(
        6e9, gt=0, description="Largest estimated work of one request (multiply-adds), refused up front."
    )
    max_full_floats: int = Field(
        1_500_000, ge=0,
        description="Size budget of detail 'full' (numbers in δ and the per-step gradients); "
        "above it the response carries norms and says so.",
    )
    max_norm_floats: int = Field(
        4_200_000, ge=1,
        description="Largest B·T² (the ‖δ_{t,k}‖ matrices every response carries), refused up front.",
    )
    max_response_mb: float = Field(
        200.0, gt=0,
        description="Largest response in MB (10⁶ bytes), estimated from the sizes before any work "
        "(every number at its widest); above it the request is refused and told how to ask for less.",
    )
    max_concurrent: int = Field(
        2, ge=1,
        description="Large requests (above the inline threshold) computed or sent at once per worker; "
        "the next waits BPTT_QUEUE_TIMEOUT, then 503 with Retry-After.",
    )
    queue_timeout: float = Field(
        5.0, ge=0, description="Seconds a large request waits for a free slot of BPTT_MAX_CONCURRENT before 503."
    )
    send_timeout: float = Field(
        20.0, gt=0,
        description="Seconds one chunk (1 MiB) of a response may wait for the client to read; after it "
        "the connection is dropped and its memory freed.",
    )
    heavy_nice: int = Field(
        10, ge=0, le=19,
        description="OS priority (nice) of the processes that compute large requests and training runs: "
        "above 0 the event loop, and so the classroom's light requests, get a core first.",
    )
    shutdown_timeout: float = Field(
        30.0, gt=0,
        description="Seconds a worker has to finish its responses after SIGTERM (uvicorn's "
        "timeout_graceful_shutdown); bptt-explorer's supervisor kills what is left after it.",
    )
    # training (POST /api/v1/train, /api/v1/compare-gradients)
    train_max_updates: int = Field(10000, ge=1, description="Most updates of one training run.")
    train_max_work: float = Field(
        5e10, gt=0, description="Largest estimated work of one training run (multiply-adds), refused up front."
    )
    train_max_runs: int = Field(
        2, ge=1, description="Training runs streaming at a time per worker; more are answered 503 with Retry-After."
    )
    train_blas_threads: int = Field(
        1, ge=0,
        description="BLAS threads while a training run computes (threadpoolctl, process-wide while any run is in "
        "a slice; OpenBLAS keeps one setting per process); 0 leaves BLAS as the process has it. Small per-update "
        "products run faster on one thread (README, bench/bench_train.py).",
    )
    gradient_check_max_entries: int = Field(
        256, ge=1, description="Entries checked per array by finite differences (a fixed sample above it)."
    )

    # security
    cors_origins: str = Field(
        "", description="Origins allowed to call the API from other sites, comma-separated (none by default)."
    )
    frame_ancestors: str = Field(
        "'self'", description="CSP frame-ancestors: who may embed the page, e.g. 'self' https://course.example.edu."
    )
    rate_limit_per_minute: int = Field(
        0, ge=0, description="POST requests a minute per client address (0: no limit). Per worker process."
    )
    rate_limit_work_per_minute: float = Field(
        0, ge=0, description="Estimated work (units of BPTT_MAX_WORK) a minute per client address (0: no limit). "
        "Per worker process.",
    )
    forwarded_allow_ips: str = Field(
        "", description="Proxies trusted for X-Forwarded-For/-Proto, comma-separated (uvicorn's "
        "forwarded_allow_ips); none by default. Set it to the proxy's address.",
    )

    # browser page
    default_language: str = Field("en", pattern="^(en|zh)$", description="Page language: en or zh.")
    presets_dir: Path | None = Field(
        None, description="Folder of extra JSON presets, validated at start."
    )


    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
