"""Qwen-Bailian usage traces (ATC'25) → programs linked by parent ids.

Format (JSON Lines): ``{"chat_id", "parent_chat_id", "turn", "timestamp",
"input_length", "output_length", "hash_ids", "type"?}``; ``timestamp`` in
**seconds** (``time_unit=1.0``), one hash id per **16-token** block
(``block_size=16``), ``parent_chat_id == -1`` for a root.

Each root and its descendants form one program: a chain for a plain
conversation, a tree where a request has several continuations. A request
whose parent is not in the file (cut off by the trace window) or comes later
in time starts a program of its own. Rows are taken in timestamp order. See
:mod:`.trace_sessions` for tokens, delays and arrivals.
"""

from __future__ import annotations

from pathlib import Path

from autellix.program import TraceError

from .tokens import require_file
from .trace_sessions import TraceRequest, build_programs, check_lengths, read_jsonl_rows, row_time

FIELDS = ("chat_id", "parent_chat_id", "timestamp", "input_length", "output_length")


def load_bailian(path: str | Path, tokenizer=None, limit: int | None = None, *,
                 block_size: int = 16, time_unit: float = 1.0, delay: str = "gap") -> list:
    """``tokenizer`` is ignored: the trace has lengths, not text."""
    path = require_file(path)
    rows = []
    for lineno, row in read_jsonl_rows(path, FIELDS):
        i, o = check_lengths(path, lineno, row)
        t = row_time(path, lineno, row, time_unit)
        rows.append((t, lineno, row, i, o))
    rows.sort(key=lambda x: (x[0], x[1]))
    requests: list[TraceRequest] = []
    index: dict[str, int] = {}
    for t, lineno, row, i, o in rows:
        key = str(row["chat_id"])
        if key in index:
            raise TraceError(f"{path}:{lineno}: duplicate chat_id {key!r}")
        parent = index.get(str(row["parent_chat_id"]))
        requests.append(TraceRequest(key=key, time=t, input_length=i, output_length=o,
                                     hash_ids=tuple(row.get("hash_ids") or ()), parent=parent))
        index[key] = len(requests) - 1
    return build_programs(requests, prefix="bailian", workload="bailian",
                          block_size=block_size, delay=delay, limit=limit)
