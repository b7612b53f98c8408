"""The real server: uvicorn in a subprocess, called over HTTP with httpx."""

from __future__ import annotations

import json

import httpx
import orjson
from server import running_server


def test_real_server_round_trip():
    with running_server() as base, httpx.Client(base_url=base, timeout=30) as http:
        presets = http.get("/api/v1/presets").json()
        body = http.get(f"/api/v1/presets/{presets[0]['id']}").json()
        r = http.post("/api/v1/bptt", content=orjson.dumps(body), headers={"content-type": "application/json"})
        assert r.status_code == 200
        d = orjson.loads(r.content)
        assert d["shapes"]["T"] == len(body["inputs"])
        assert "compute;dur=" in r.headers["server-timing"]
        bad = http.post("/api/v1/bptt", content=b"{", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "body"
        over = http.post("/api/v1/bptt", content=json.dumps({**body, "inputs": [[1.0]] * 5000}))
        assert over.status_code == 422 and "BPTT_MAX_T" in over.json()["error"]["message"]
        assert http.get("/").status_code == 200
