"""Dataset and trace loaders: local files → :class:`autellix.program.Program` lists.

Loaders never download anything. ``load(kind, path, tokenizer=None,
limit=None, **kw)`` dispatches on ``kind``:

* ``sharegpt``  ShareGPT JSON array (tolerates a truncated file)
* ``bfcl``      BFCL multi-turn JSON Lines (optional answers and function docs)
* ``swe-agent`` nebius/SWE-agent-trajectories rows (parquet or JSON Lines)
* ``mooncake``  Mooncake trace JSONL (ms timestamps, 512-token blocks)
* ``bailian``   Qwen-Bailian trace JSONL (s timestamps, 16-token blocks)
* ``programs``  an autellix workload JSONL (``save_programs`` output)

Malformed input raises :class:`autellix.program.TraceError` naming the file
and what is wrong; an option the loader does not take, or of the wrong type,
raises :class:`autellix.config.ConfigError` before the file is read.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from autellix.config import ConfigError
from autellix.program import Program, TraceError, load_programs

from .bailian import load_bailian
from .bfcl import bfcl_files, find_bfcl_data, load_bfcl
from .mooncake import load_mooncake
from .sharegpt import load_sharegpt
from .swe_agent import load_swe_agent


def _load_programs(path, tokenizer=None, limit=None) -> list[Program]:
    programs = load_programs(path)
    return programs if limit is None else programs[:limit]


LOADERS: dict[str, Callable[..., list[Program]]] = {
    "sharegpt": load_sharegpt, "bfcl": load_bfcl, "swe-agent": load_swe_agent,
    "mooncake": load_mooncake, "bailian": load_bailian, "programs": _load_programs,
}

DESCRIPTIONS = {
    "sharegpt": "ShareGPT JSON conversations → chatbot chains (truncated files tolerated)",
    "bfcl": "BFCL multi-turn JSONL → ReAct chains (optional answers / function docs)",
    "swe-agent": "SWE-agent trajectories (nebius layout; parquet or JSONL) → swe chains",
    "mooncake": "Mooncake trace JSONL → sessions inferred from shared hash_ids prefixes",
    "bailian": "Qwen-Bailian trace JSONL → chains/trees from parent_chat_id links",
    "programs": "autellix workload JSONL (as written by save_programs)",
}


def load(kind: str, path: str | Path, tokenizer=None, limit: int | None = None,
         **kw) -> list[Program]:
    try:
        loader = LOADERS[kind]
    except KeyError:
        raise TraceError(f"unknown loader kind {kind!r}; "
                         f"choose from {', '.join(LOADERS)}") from None
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be >= 1, got {limit}")
    _check_options(kind, loader, path, tokenizer, limit, kw)
    return loader(path, tokenizer=tokenizer, limit=limit, **kw)


def _check_options(kind: str, loader, path, tokenizer, limit, kw: dict) -> None:
    """A :class:`ConfigError` for an option the loader does not take, or one whose value
    is not of its default's type (an int, a number or a string), before anything runs."""
    sig = inspect.signature(loader)
    try:
        sig.bind(path, tokenizer=tokenizer, limit=limit, **kw)
    except TypeError as e:
        raise ConfigError(f"{kind}: bad option ({e})") from None
    for key, value in kw.items():
        default = sig.parameters[key].default
        if isinstance(default, bool) or default is None or default is inspect.Parameter.empty:
            continue
        kinds = {int: (int,), float: (int, float), str: (str,)}.get(type(default))
        if kinds and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise ConfigError(f"{kind}: bad option ({key} must be {type(default).__name__}, "
                              f"got {value!r})")


__all__ = ["LOADERS", "DESCRIPTIONS", "load", "load_sharegpt", "load_bfcl", "load_swe_agent",
           "load_mooncake", "load_bailian", "find_bfcl_data", "bfcl_files"]
