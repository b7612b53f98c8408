"""The one error the training building blocks raise for a bad option."""

from __future__ import annotations

from typing import Any


class OptionError(ValueError):
    """An option refused: ``field`` is its name (torch.optim's keyword, or the task option),
    ``expected`` what would be accepted, ``got`` what came."""

    def __init__(self, field: str, expected: str, got: Any) -> None:
        super().__init__(f"{field}: expected {expected}, got {got!r}")
        self.field, self.expected, self.got = field, expected, got
