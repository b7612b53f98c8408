"""``Accept: application/x-npz``: the response of POST /api/v1/bptt as a NumPy archive.

Every number of the JSON response is the npz member at its path, bit for bit (a JSON null is
NaN or ±inf there; the entries the JSON leaves out or writes as null because they do not exist,
k > t, are 0), every other value is in ``__meta__``, and nothing else is in the archive; for
every cell, batch, method, truncation, clip, detail, field choice and the gradient check."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings as hsettings

from app.api import npz, respond, routes, size
from app.api.parse import RESPONSE_FIELDS, decode, parse
from app.engine import run
from app.main import create_app
from app.settings import Settings
from test_response_size import requests as any_request

NPZ = {"accept": "application/x-npz"}
#: the T×T matrices the JSON writes with null above the diagonal (k > t)
TRIANGLES = {"delta_norm", "delta_h_norm", "delta_c_norm", "diagnostics/delta_bound"}
#: ragged in the JSON (delta[t] holds k ≤ t), dense in the archive
RAGGED = {"delta", "delta_h", "delta_c"}


@pytest.fixture(scope="module")
def c():
    with TestClient(create_app(Settings())) as client:
        yield client


def body_of(cell="vanilla", B=None, T=5, n=3, m=4, p=2, seed=0, **over) -> dict:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B or 1, T, n))
    Y = rng.standard_normal((B or 1, T, p))
    body = {"cell": cell, "inputs": (X if B else X[0]).tolist(), "targets": (Y if B else Y[0]).tolist(),
            "init": {"seed": seed, "hidden": m, "outputs": p}}
    return body | over


def both(c, body) -> tuple[dict, dict[str, np.ndarray], dict, bytes]:
    """The JSON document, the archive's members (without __meta__), its meta and its bytes."""
    rj = c.post("/api/v1/bptt", json=body)
    rz = c.post("/api/v1/bptt", json=body, headers=NPZ)
    assert rj.status_code == 200 and rz.status_code == 200, (rj.text[:300], rz.text[:300])
    assert rj.headers["content-type"] == "application/json"
    assert rz.headers["content-type"] == "application/x-npz"
    z = np.load(io.BytesIO(rz.content), allow_pickle=False)
    members = {k: z[k] for k in z.files}
    meta = json.loads(members.pop(npz.META).item())
    return orjson.loads(rj.content), members, meta, rz.content


def same_bits(got: np.ndarray, want, path: str, triangle: bool = False) -> None:
    """got (the member) holds want (the JSON value) bit for bit; null ↔ NaN/±inf (or 0 above the
    diagonal of a T×T matrix, where the JSON's null says the entry does not exist)."""
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        assert got.shape == (), path
        assert got.dtype == (np.int64 if isinstance(want, int) else np.float64), (path, got.dtype)
        assert got.item() == want and np.signbit(got) == np.signbit(want), (path, got, want)
        return
    if want is None:  # a number that overflowed
        assert got.shape == () and not np.isfinite(got), (path, got)
        return
    null = np.array(want, dtype=object) == None  # noqa: E711
    w = np.array(want, dtype=np.float64)  # (null → NaN)
    assert got.dtype == np.float64 and got.shape == w.shape, (path, got.dtype, got.shape, w.shape)
    exists = np.ones(w.shape, dtype=bool)
    if triangle:
        upper = ~np.tri(w.shape[-1], dtype=bool)
        assert null[..., upper].all(), path
        assert (got[..., upper] == 0).all(), path
        exists[..., upper] = False
    assert not np.isfinite(got[null & exists]).any(), path
    ok = ~null
    assert np.isfinite(w[ok]).all(), path
    assert np.array_equal(got[ok].view(np.uint64), w[ok].view(np.uint64)), path


def compare(doc: dict, members: dict[str, np.ndarray], meta: dict) -> None:
    """Every value of the JSON document is a member (numbers) or in meta (the rest), and every
    member and meta entry is a value of the document."""
    seen: set[str] = set()

    def walk(v, path: str, rest):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, f"{path}/{k}", rest.get(k) if isinstance(rest, dict) else None)
            return
        numeric = isinstance(v, (int, float)) and not isinstance(v, bool) or (
            isinstance(v, list) and v and path in members)
        if path in members:
            seen.add(path)
            name = path.split("/", 1)[0] if path.split("/", 1)[0] in RAGGED else path
            if name in RAGGED:
                dense = members[path]
                rows = v if dense.ndim == 4 else [v]
                d4 = dense if dense.ndim == 4 else dense[None]
                T = d4.shape[1]
                assert d4.shape[2] == T, path
                for b, seq in enumerate(rows):
                    assert len(seq) == T
                    for t, row in enumerate(seq):
                        same_bits(d4[b, t, : t + 1], row, f"{path}[{b}][{t}]")
                        assert (d4[b, t, t + 1 :] == 0).all(), f"{path}: k > t not zero"
            else:
                same_bits(members[path], v, path, triangle=path in TRIANGLES)
            assert rest is None, f"{path} in both"
        else:
            assert not numeric or v is None, f"{path}: a number not in the archive"
            assert rest == v, (path, rest, v)

    for k, v in doc.items():
        if k in RESPONSE_FIELDS:
            walk(v, k, meta.get(k))
        else:
            assert meta[k] == v, k
    assert seen == set(members), set(members) - seen
    assert set(meta) <= set(doc)


CASES = {
    "vanilla": body_of(),
    "vanilla, a batch, gradient check": body_of(B=3, gradient_check=True),
    "residual, relu, truncation, clip": body_of("residual", activation="relu", truncation=2, clip={"max_norm": 0.1}),
    "lstm, pytorch names, every field": body_of("lstm", notation="pytorch", fields=list(RESPONSE_FIELDS),
                                                  select={"t": 3, "k": 1}),
    "lstm, a batch, delta_h/delta_c, gradient check": body_of(
        "lstm", B=2, fields=["delta", "delta_h", "delta_h_norm", "delta_c", "dc", "grads", "gradient_check"],
        gradient_check=True),
    "gru, a batch, softmax_ce, mean, clip by value": body_of(
        "gru", B=2, loss="softmax_ce", targets=[[0, 1, 1, 0, 1]] * 2, reduction="mean", clip={"max_value": 1e-3}),
    "gru, detail norms": body_of("gru", T=7, detail="norms"),
    "rtrl, lstm": body_of("lstm", method="rtrl"),
    "rtrl, vanilla, a batch": body_of(B=2, method="rtrl", fields=["grads", "forward"]),
    "fields delta + grads": body_of(T=9, m=6, fields=["delta", "grads"]),
    "norms asked for delta": body_of(T=6, detail="norms", fields=["delta", "grads"]),
    "upstream, loss_steps": body_of(loss="upstream", targets=None, upstream=np.ones((3, 4)).tolist(),
                                    loss_steps=[True, False, True, False, True], init={"seed": 2, "hidden": 4}),
}


@pytest.mark.parametrize("body", CASES.values(), ids=CASES.keys())
def test_every_json_value_is_in_the_archive_bit_for_bit(c, body):
    doc, members, meta, _ = both(c, {k: v for k, v in body.items() if v is not None})
    compare(doc, members, meta)


def test_overflow_is_nan_or_inf_where_the_json_has_null(c):
    body = c.get("/api/v1/presets/overflow").json() | {"fields": ["forward", "delta", "delta_norm", "dz", "grads"]}
    doc, members, meta, _ = both(c, body)
    assert doc["nonfinite"] and meta["nonfinite"] == doc["nonfinite"]
    compare(doc, members, meta)
    h = members["forward/h"]
    assert np.isinf(h).any() and np.isfinite(h).any()  # ±inf kept as such, not only NaN
    for path in doc["nonfinite"]:
        assert not np.isfinite(members[path.replace(".", "/")]).all(), path


def test_shapes_and_the_zeros_above_the_diagonal(c):
    T, m, B, n = 6, 3, 2, 2
    _, z, meta, _ = both(c, body_of("lstm", B=B, T=T, m=m, n=n, fields=[
        "delta", "delta_norm", "delta_h", "delta_h_norm", "delta_c", "grads", "forward"]))
    G = 4
    assert z["delta"].shape == (B, T, T, G * m)  # gated: ∂L_t/∂a_k, G·m wide
    assert z["delta_h"].shape == z["delta_c"].shape == (B, T, T, m)
    assert z["delta_norm"].shape == z["delta_h_norm"].shape == (B, T, T)
    assert z["forward/gates/f"].shape == (B, T, m) and z["grads/h0"].shape == z["grads/c0"].shape == (B, m)
    upper = ~np.tri(T, dtype=bool)
    for name in ("delta", "delta_h", "delta_c"):
        assert (z[name][:, upper] == 0).all() and (z[name][:, ~upper] != 0).any()
    assert np.allclose(np.linalg.norm(z["delta"], axis=-1), z["delta_norm"], rtol=1e-14, atol=0)
    assert np.allclose(np.linalg.norm(z["delta_h"], axis=-1), z["delta_h_norm"], rtol=1e-14, atol=0)
    assert meta["shapes"] == {"T": T, "n": n, "m": m, "p": 2, "batch": B}
    # without a batch: no batch axis, as in the JSON
    _, z1, _, _ = both(c, body_of(T=T, m=m, fields=["delta", "grads"]))
    assert z1["delta"].shape == (T, T, m) and z1["grads/W_hh"].shape == (m, m)


def test_rtrl_gives_the_same_gradients_and_no_delta(c):
    body = body_of("gru", T=6, fields=["delta", "grads"])
    _, bptt, _, _ = both(c, body)
    _, rtrl, meta, _ = both(c, body | {"method": "rtrl"})
    assert "delta" not in rtrl and meta["delta"] is None and any("rtrl" in w for w in meta["warnings"])
    for k in ("grads/W_ih", "grads/W_hh", "grads/b_ih", "grads/b_hh", "grads/W_hy", "grads/h0"):
        assert np.allclose(rtrl[k], bptt[k], rtol=1e-10, atol=1e-14), k


def test_every_member_is_a_plain_npy_and_loads_without_pickles(c):
    _, _, _, raw = both(c, body_of("lstm", gradient_check=True, fields=list(RESPONSE_FIELDS), select={"t": 3, "k": 1}))
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        assert zf.testzip() is None  # every CRC right
        infos = zf.infolist()
        assert all(i.filename.endswith(".npy") and i.compress_type == zipfile.ZIP_STORED for i in infos)
        for i in infos:
            a = np.lib.format.read_array(zf.open(i), allow_pickle=False)
            assert a.dtype.kind in "fiU" and not a.dtype.hasobject, i.filename
    z = np.load(io.BytesIO(raw), allow_pickle=False)
    assert z[npz.META].dtype.kind == "U" and z[npz.META].shape == ()
    assert json.loads(z[npz.META].item())["cell"] == "lstm"


def test_streamed_and_written_whole_are_the_same_bytes(monkeypatch, c):
    """Above STREAM_RESPONSE_BYTES the archive is sent in pieces while it is written (no
    Content-Length), in the thread pool between them; the bytes are those of npz.dumps."""
    body = body_of(B=2, T=40, m=8, fields=["delta", "delta_norm", "grads", "forward"])
    whole = c.post("/api/v1/bptt", json=body, headers=NPZ)
    assert "content-length" in whole.headers
    monkeypatch.setattr(routes, "INLINE_RESPONSE_BYTES", 100)
    monkeypatch.setattr(routes, "STREAM_RESPONSE_BYTES", 1000)
    monkeypatch.setattr(npz, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(npz.chunks, "__defaults__", (4096,))
    streamed = c.post("/api/v1/bptt", json=body, headers=NPZ)
    assert streamed.status_code == 200 and streamed.headers["content-type"] == "application/x-npz"
    assert "content-length" not in streamed.headers
    assert streamed.content == whole.content
    parsed = parse(decode(orjson.dumps(body)), Settings(), "npz")
    doc = respond.build(run(parsed.problem), parsed, dense=True)
    pieces = list(npz.chunks(doc, 4096))
    assert len(pieces) > len(whole.content) // (2 * 4096) and max(map(len, pieces)) < 2 * 4096 + 1024
    assert b"".join(pieces) == npz.dumps(doc) == whole.content


@pytest.mark.parametrize("accept,media", [
    (None, "application/json"), ("*/*", "application/json"), ("application/json", "application/json"),
    ("application/*", "application/json"), ("application/x-npz", "application/x-npz"),
    ("application/x-npz, */*;q=0.1", "application/x-npz"), ("application/x-npz, */*", "application/x-npz"),
    ("application/json;q=0.5, application/x-npz", "application/x-npz"),
    ("application/x-npz;q=0.5, application/json", "application/json"),
    ("application/x-npz;q=0, */*", "application/json"), ("text/html,application/xhtml+xml,*/*;q=0.8", "application/json"),
    ("", "application/json"), ("foo", "application/json"),
    (",,,;;;", "application/json"),  # (no media range in it: disregarded, as the README says; was 406)
])
def test_accept_chooses_the_format(c, accept, media):
    r = c.post("/api/v1/bptt", json=body_of(), headers={} if accept is None else {"accept": accept})
    assert r.status_code == 200 and r.headers["content-type"] == media, r.text[:200]
    assert "accept" in r.headers["vary"].lower()


@pytest.mark.parametrize("accept", ["text/html", "application/x-npz;q=0", "image/png, text/*",
                                    "application/json;q=0, application/x-npz;q=0"])
def test_an_accept_the_api_cannot_give_is_406_in_the_one_error_shape(monkeypatch, c, accept):
    def not_called(*a, **k):
        raise AssertionError("computed")

    monkeypatch.setattr(routes, "run", not_called)
    r = c.post("/api/v1/bptt", json=body_of(), headers={"accept": accept})
    assert r.status_code == 406 and r.headers["content-type"] == "application/json"
    e = r.json()["error"]
    assert e["code"] == "not_acceptable" and e["field"] == "accept"
    assert e["params"]["options"] == ["application/json", "application/x-npz"]
    assert "application/x-npz" in e["expected"] and accept[:20] in e["got"]


def test_errors_stay_json_when_npz_is_asked_for(c):
    r = c.post("/api/v1/bptt", json=body_of(truncation=0), headers=NPZ)
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]["field"] == "truncation"


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_request())
def test_the_npz_estimate_bounds_every_archive(body):
    s = Settings()
    parsed = parse(decode(orjson.dumps(body)), s, "npz")
    out = npz.dumps(respond.build(run(parsed.problem), parsed, dense=True))
    assert len(out) <= parsed.response_bytes


@pytest.mark.parametrize("shape", [dict(B=1, T=64, n=16, m=32, p=8), dict(B=4, T=40, n=3, m=8, p=3),
                                   dict(B=2, T=24, n=2, m=16, p=2)])
@pytest.mark.parametrize("cell", ["vanilla", "lstm"])
@pytest.mark.parametrize("fields", [None, ["delta", "grads"], ["delta_norm", "diagnostics", "forward"]])
def test_the_npz_estimate_is_tight(shape, cell, fields):
    """8 bytes a number and NPZ_MEMBER a member: within 1 % and the allowances (meta, members,
    the gradient check's report, counted whether or not the check was asked for)."""
    B, T, n, m, p = shape.values()
    body = body_of(cell, B=B, T=T, n=n, m=m, p=p) | ({"fields": fields} if fields else {})
    parsed = parse(decode(orjson.dumps(body)), Settings(max_full_floats=10**9), "npz")
    out = npz.dumps(respond.build(run(parsed.problem), parsed, dense=True))
    members = len(zipfile.ZipFile(io.BytesIO(out)).infolist())
    check = size.npz_fields(B, T, n, m, p, [a.shape for a in parsed.problem.params.values()], detail="full",
                            clip=False, G=4 if cell == "lstm" else 1, states=2 if cell == "lstm" else 1)["gradient_check"]
    allowance = size.npz_meta(T) + members * size.NPZ_MEMBER + check
    assert len(out) <= parsed.response_bytes <= 1.01 * len(out) + allowance


def test_the_limit_is_checked_against_the_archive_before_any_work(monkeypatch):
    """BPTT_MAX_RESPONSE_MB holds for the npz estimate: a request whose JSON is over the limit
    and whose archive is not is answered as npz (and refused as JSON), one whose archive is
    over too is refused before computing, naming the setting."""
    body = body_of(B=4, T=96, n=4, m=16, fields=["delta", "grads"])
    json_est = parse(decode(orjson.dumps(body)), Settings()).response_bytes
    npz_est = parse(decode(orjson.dumps(body)), Settings(), "npz").response_bytes
    assert npz_est < 0.8 * json_est
    limit = (npz_est + json_est) / 2 / 1e6
    with TestClient(create_app(Settings(max_response_mb=limit))) as c:
        assert c.post("/api/v1/bptt", json=body, headers=NPZ).status_code == 200
        r = c.post("/api/v1/bptt", json=body)
        assert r.status_code == 422 and "BPTT_MAX_RESPONSE_MB" in r.json()["error"]["expected"]

    def not_called(*a, **k):
        raise AssertionError("computed")

    monkeypatch.setattr(routes, "run", not_called)
    with TestClient(create_app(Settings(max_response_mb=npz_est / 1e6 * 0.99))) as c:
        r = c.post("/api/v1/bptt", json=body, headers=NPZ)
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"
    e = r.json()["error"]
    assert e["code"] == "over_limit" and e["params"]["setting"] == "BPTT_MAX_RESPONSE_MB"
    assert "of npz" in e["got"]


def test_the_openapi_description_documents_the_archive(c):
    op = c.get("/openapi.json").json()["paths"]["/api/v1/bptt"]["post"]
    assert "application/x-npz" in op["responses"]["200"]["content"]
    assert op["responses"]["406"]["content"]["application/json"]
    assert "np.load(io.BytesIO(r.content), allow_pickle=False)" in op["description"]


def test_the_readme_example_runs(c):
    """The README's three lines, against the app."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("```python\nr = httpx.post(url, json=body, headers={\"Accept\": \"application/x-npz\"})")
    code = readme[start + len("```python\n"): readme.index("```", start + 10)]
    assert code.count("\n") == 3, code

    class Httpx:
        @staticmethod
        def post(url, json, headers):
            return c.post(url, json=json, headers=headers)

    env = {"httpx": Httpx, "url": "/api/v1/bptt", "body": body_of("gru"), "np": np, "io": io, "json": json}
    exec(code, env)
    assert env["delta"].shape == (5, 5, 12) and env["meta"]["cell"] == "gru"
