"""The response of ``POST /api/v1/bptt`` as a NumPy ``.npz`` archive (``Accept: application/x-npz``).

The same document as the JSON (``respond.build(…, dense=True)``), split in two:

- members: every array of numbers and every number of the computed fields (``params``,
  ``forward``, ``delta``, ``grads``, ``clip``, ``diagnostics``, ``gradient_check``, …), each
  named by its JSON path with ``/`` between the keys (``delta``, ``grads/W_hh``,
  ``forward/h``, ``gradient_check/arrays/W_hh/max_rel_error``), with the JSON field's shape
  and float64 numbers (integer counts int64), NaN or ±inf where the JSON has null because the
  number overflowed. ``delta``, ``delta_h`` and ``delta_c`` are dense (…×T×T×·) and every
  T×T array holds 0 where k > t (the entries the JSON leaves out or writes as null), so
  ``np.linalg.norm(z["delta"], axis=-1)`` is ``z["delta_norm"]``.
- ``__meta__``: a 0-d unicode array holding the JSON of everything else: the fields that
  describe the request (``version`` … ``shapes``, ``warnings``, ``nonfinite``, ``loss_steps``)
  and the strings, booleans and nulls of the computed fields (``clip.method``,
  ``gradient_check.ok``, ``"delta": null`` with detail norms), at their JSON paths.
  ``json.loads(z["__meta__"].item())``.

Every member is a plain ``.npy`` (no object arrays): ``np.load(f, allow_pickle=False)`` reads
it. The archive is written without compression (float64 noise barely compresses) and
without seeking, each member's sizes and CRC in a data descriptor after it, so it can be sent
while it is written (``chunks``) and the bytes are the same whether streamed or not.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import Any

import sys

import numpy as np

from .parse import RESPONSE_FIELDS
from .respond import dumps as dumps_json

MEDIA_TYPE = "application/x-npz"
#: the member holding the JSON of the non-numeric rest of the document
META = "__meta__"
#: bytes per piece written (and per send when streamed): numpy copies a block of rows of this
#: size at most, so memory beyond the document stays bounded
CHUNK_BYTES = 1 << 20

_COMPUTED = frozenset(RESPONSE_FIELDS)


def _numbers(v: list) -> bool:
    """v is a (nested) list of numbers and nulls only."""
    return all(_numbers(x) if isinstance(x, list) else (x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)))
               for x in v)


def _split(v: Any, path: str, members: dict[str, np.ndarray]) -> Any:
    """Put the numbers of v into members (path → array); return what stays in the meta document
    (``_DROP`` when nothing does)."""
    if isinstance(v, dict):
        kept = {}
        for k, x in v.items():
            rest = _split(x, f"{path}/{k}", members)
            if rest is not _DROP:
                kept[k] = rest
        return kept or _DROP
    if isinstance(v, np.ndarray) and v.dtype.kind in "fiu":
        members[path] = v
        return _DROP
    if isinstance(v, (float, np.floating)):
        members[path] = np.asarray(v, dtype=np.float64)
        return _DROP
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        members[path] = np.asarray(v, dtype=np.int64)
        return _DROP
    if isinstance(v, list) and v and _numbers(v):  # (numpy writes a null as NaN)
        members[path] = np.array(v, dtype=np.float64)
        return _DROP
    return v


_DROP = object()


def split(doc: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The document (``respond.build(…, dense=True)``) → (members, meta): path → array in the
    document's order, and the JSON-able rest."""
    members: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    for k, v in doc.items():
        if k not in _COMPUTED:
            meta[k] = v
            continue
        rest = _split(v, k, members)
        if rest is not _DROP:
            meta[k] = rest
    return members, meta


class _Sink:
    """A write-only, unseekable file collecting what zipfile writes, taken out in pieces."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, b) -> int:
        n = memoryview(b).nbytes
        self.parts.append(b)  # (a block written is not changed afterwards: no copy until joined)
        self.size += n
        return n

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts, self.size = [], 0
        return out


def _write_npy(f, a: np.ndarray, sink: _Sink, chunk: int) -> Iterator[bytes]:
    """The .npy of a (C order, format 1.0) into f, at most chunk bytes at a time; yields the
    sink's bytes whenever it holds a chunk. A C-contiguous array is written from its own memory,
    any other (δ is a view of a k-major array) through numpy's buffered iterator, as
    ``np.lib.format.write_array`` does."""
    header = {"descr": np.lib.format.dtype_to_descr(a.dtype), "fortran_order": False, "shape": a.shape}
    np.lib.format.write_array_header_1_0(f, header)
    if a.size == 0:
        return
    per = max(1, min(chunk // a.itemsize, a.size))  # numbers per write
    if a.flags.c_contiguous:
        flat = memoryview(a.reshape(-1))
        blocks = (flat[i : i + per] for i in range(0, a.size, per))
    else:
        blocks = (b.tobytes() for b in np.nditer(a, flags=["external_loop", "buffered", "zerosize_ok"],
                                                 buffersize=per, order="C"))
    for block in blocks:
        f.write(block)
        if sink.size >= chunk:
            yield sink.take()


def chunks(doc: dict[str, Any], chunk: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The archive of doc in pieces of chunk bytes or a little more (a piece ends after the
    write that reached chunk: at most chunk bytes of numbers and a member's headers)."""
    members, meta = split(doc)
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        text = dumps_json(meta).decode()
        for name, a in ((META, np.array(text)), *members.items()):
            with zf.open(name + ".npy", "w", force_zip64=True) as f:
                yield from _write_npy(f, a, sink, chunk)
            if sink.size >= chunk:
                yield sink.take()
    yield sink.take()


def dumps(doc: dict[str, Any]) -> bytes:
    """The whole archive of doc (the same bytes as the chunks joined)."""
    return b"".join(chunks(doc, sys.maxsize))
