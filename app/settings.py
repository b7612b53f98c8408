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
    log_level: str = Field("info", description="uvicorn log level: critical, error, warning, info, debug.")

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
    # training (POST /api/v1/train, /api/v1/compare-gradients)
    train_max_updates: int = Field(10000, ge=1, description="Most updates of one training run.")
    train_max_work: float = Field(
        5e10, gt=0, description="Largest estimated work of one training run (multiply-adds), refused up front."
    )
    train_max_runs: int = Field(
        2, ge=1, description="Training runs streaming at a time per worker; more are answered 503 with Retry-After."
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
    forwarded_allow_ips: str = Field(
        "127.0.0.1", description="Proxies trusted for X-Forwarded-For/-Proto (uvicorn's forwarded_allow_ips)."
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
