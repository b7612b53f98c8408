"""Presets: complete request bodies with an English and a Chinese title and description.

Built-in presets live in app/presets/*.json; a teacher adds more by dropping JSON files into
the folder named by BPTT_PRESETS_DIR. Every preset is validated at start (as a request would
be); a broken one stops the server with a message naming the file and the field.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api.errors import ApiError
from .api.parse import parse
from .settings import Settings

BUILTIN_DIR = Path(__file__).parent / "presets"
LANGS = ("en", "zh")
log = logging.getLogger("bptt_explorer")


class PresetError(ValueError):
    pass


@dataclass(frozen=True)
class Preset:
    id: str
    order: int
    title: dict[str, str]
    description: dict[str, str]
    request: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        # the notation its texts are written in: the page renames the canonical names they mention
        return {"id": self.id, "title": self.title, "description": self.description,
                "notation": self.request.get("notation", "canonical")}


def _texts(doc: dict, key: str, where: str) -> dict[str, str]:
    v = doc.get(key)
    if isinstance(v, str):
        v = {lang: v for lang in LANGS}
    if not isinstance(v, dict) or not all(isinstance(v.get(lang), str) and v[lang] for lang in LANGS):
        raise PresetError(f"{where}: {key}: expected {{\"en\": \"…\", \"zh\": \"…\"}} (or one string for both)")
    return {lang: v[lang] for lang in LANGS}


def load_file(path: Path, settings: Settings) -> Preset:
    where = f"preset {path}"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PresetError(f"{where}: not readable JSON ({e})") from None
    if not isinstance(doc, dict):
        raise PresetError(f"{where}: expected an object with id, title, description, request")
    pid = doc.get("id", path.stem)
    if not isinstance(pid, str) or not pid or not all(c.isalnum() or c in "-_." for c in pid):
        raise PresetError(f"{where}: id: expected letters, digits, '-', '_' or '.', got {pid!r}")
    request = doc.get("request")
    if not isinstance(request, dict):
        raise PresetError(f"{where}: request: expected a request body (an object)")
    try:
        parse(request, settings)
    except ApiError as e:
        raise PresetError(f"{where}: request.{e.message}") from None
    order = doc.get("order", 1000)
    return Preset(
        id=pid, order=order if isinstance(order, int) else 1000,
        title=_texts(doc, "title", where), description=_texts(doc, "description", where),
        request=request,
    )


def load_all(settings: Settings) -> dict[str, Preset]:
    dirs = [BUILTIN_DIR]
    if settings.presets_dir is not None:
        if not settings.presets_dir.is_dir():
            raise PresetError(f"BPTT_PRESETS_DIR: {settings.presets_dir} is not a folder")
        dirs.append(settings.presets_dir)
    presets: dict[str, Preset] = {}
    for d in dirs:
        for path in sorted(d.glob("*.json")):
            try:
                preset = load_file(path, settings)
            except PresetError as e:
                if d != BUILTIN_DIR:
                    raise
                # a built-in preset over the limits a teacher configured is left out, not fatal
                log.warning("left out: %s", e)
                continue
            if preset.id in presets and d == BUILTIN_DIR:
                raise PresetError(f"preset {path}: id {preset.id!r} is used twice")
            presets[preset.id] = preset  # a teacher's preset may replace a built-in one
    return dict(sorted(presets.items(), key=lambda kv: (kv[1].order, kv[0])))
