"""Token counting for loaders, and the common error helpers.

With a tokenizer (any object with ``encode(str) -> list``, e.g. a Hugging
Face tokenizer), counts are exact; special tokens are not added when the
tokenizer accepts ``add_special_tokens=False``. Without one, a count is
approximated as ``ceil(len(text) / 4)`` (about 4 characters per token for
English text and code with GPT/Llama-style BPE vocabularies; ShareGPT's gpt
messages average 1356 characters). Chat-template overhead is not counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autellix.program import TraceError

CHARS_PER_TOKEN = 4


def token_counter(tokenizer: Any = None) -> Callable[[str], int]:
    """A function text → token count, exact with ``tokenizer``, else approximate."""
    if tokenizer is None:
        return lambda text: math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0
    if not hasattr(tokenizer, "encode"):
        raise TypeError("tokenizer must have an encode(str) method, "
                        f"got {type(tokenizer).__name__}")

    def count(text: str) -> int:
        if not text:
            return 0
        try:
            return len(tokenizer.encode(text, add_special_tokens=False))
        except TypeError:
            return len(tokenizer.encode(text))

    return count


def as_text(value: Any) -> str:
    """Message content as text: strings as is, lists of parts joined, None empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(as_text(v.get("text", "") if isinstance(v, dict) else v) for v in value)
    return str(value)


def require_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"input file not found: {path}")
    return path
