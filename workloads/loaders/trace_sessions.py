"""Shared plumbing for production traces (lengths and timestamps, no text).

A trace row becomes a :class:`TraceRequest`; rows linked by ``parent`` form a
program (a tree: a chain unless a request has two continuations). For each
call:

* ``shared_prompt_tokens`` = blocks shared with the parent's ``hash_ids``
  prefix × ``block_size``, capped by the parent's prompt + output and by the
  call's own prompt; ``new_prompt_tokens`` = the rest of ``input_length``.
* ``tool_delay`` = the gap between the parent's and the call's timestamps.
  The trace records arrivals, not completions, so this gap *includes the
  parent's own service time*: it is an upper bound on the real think/tool
  time. Pass ``delay="zero"`` to replay continuations back to back instead.
* ``Program.arrival`` = the root's timestamp relative to the trace's first
  row, in seconds (``timestamp * time_unit``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from autellix.config import ConfigError
from autellix.program import Call, Program, TraceError


@dataclass
class TraceRequest:
    key: str
    time: float  # seconds
    input_length: int
    output_length: int
    hash_ids: tuple
    parent: int | None = None  # index into the request list


def read_jsonl_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    with path.open(encoding="utf-8") as fp:
        for lineno, line in enumerate(fp, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise TraceError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise TraceError(f"{path}:{lineno}: expected a JSON object")
            missing = [k for k in required if k not in row]
            if missing:
                raise TraceError(f"{path}:{lineno}: missing field(s) {missing}; "
                                 f"expected {list(required)}")
            yield lineno, row


def check_lengths(path: Path, lineno: int, row: dict) -> tuple[int, int]:
    try:
        i, o = int(row["input_length"]), int(row["output_length"])
    except (TypeError, ValueError):
        raise TraceError(f"{path}:{lineno}: input_length/output_length must be integers") from None
    if i < 0 or o < 0:
        raise TraceError(f"{path}:{lineno}: negative token length")
    if not isinstance(row.get("hash_ids", []), list):
        raise TraceError(f"{path}:{lineno}: hash_ids must be a list")
    return i, o


def row_time(path: Path, lineno: int, row: dict, time_unit: float) -> float:
    """The row's ``timestamp`` in seconds (``time_unit`` seconds per trace unit)."""
    try:
        return float(row["timestamp"]) * time_unit
    except (TypeError, ValueError):
        raise TraceError(f"{path}:{lineno}: timestamp must be a number") from None


def common_prefix(a: tuple, b: tuple) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):  # up to the shorter
        if x != y:
            break
        n += 1
    return n


def build_programs(requests: list[TraceRequest], *, prefix: str, workload: str,
                   block_size: int, delay: str = "gap", limit: int | None = None) -> list[Program]:
    if block_size < 1:
        raise ConfigError(f"block_size must be >= 1, got {block_size}")
    if delay not in ("gap", "zero"):
        raise ConfigError(f"delay must be 'gap' or 'zero', got {delay!r}")
    if not requests:
        return []
    root_of: list[int] = []
    members: dict[int, list[int]] = {}
    for i, r in enumerate(requests):
        root = i if r.parent is None else root_of[r.parent]
        root_of.append(root)
        members.setdefault(root, []).append(i)
    t0 = min(r.time for r in requests)
    programs = []
    for root in sorted(members, key=lambda k: (requests[k].time, k)):
        ids: dict[int, str] = {}
        calls = []
        for i in members[root]:
            r = requests[i]
            parent = requests[r.parent] if r.parent is not None else None
            shared = 0
            if parent is not None:
                shared = min(common_prefix(parent.hash_ids, r.hash_ids) * block_size,
                             parent.input_length + parent.output_length, r.input_length)
            gap = max(0.0, r.time - parent.time) if parent is not None and delay == "gap" else 0.0
            ids[i] = f"c{len(calls)}"
            calls.append(Call(id=ids[i], parents=(ids[r.parent],) if parent is not None else (),
                              shared_prompt_tokens=shared,
                              new_prompt_tokens=max(r.input_length - shared, 1 - shared),
                              output_tokens=max(r.output_length, 1), tool_delay=gap))
        programs.append(Program(id=f"{prefix}-{requests[root].key}", calls=tuple(calls),
                                workload=workload, arrival=requests[root].time - t0))
        if limit is not None and len(programs) >= limit:
            break
    return programs
