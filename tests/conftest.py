from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="module")
def base():
    """The app under plain uvicorn on a free port, for one test module: its base URL."""
    from server import running_server

    with running_server() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for a test module (browser.chromium: skipped, or failed under CI=true, without one)."""
    from browser import chromium

    with chromium() as b:
        yield b


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def settings():
    from app.settings import Settings

    return Settings()


@pytest.fixture
def client():
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app()) as c:
        yield c
