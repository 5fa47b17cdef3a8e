"""Programs: DAGs of LLM calls, and their JSONL trace format.

A *program* is an agent run: a DAG of LLM calls. Each :class:`Call` records

* ``shared_prompt_tokens``: the part of its prompt that repeats the program's
  earlier context (its first parent's prompt followed by that parent's output),
  so a prefix cache on the same engine can reuse it;
* ``new_prompt_tokens``: tokens appended after that shared context (a user turn,
  a tool observation, ...);
* ``output_tokens``: tokens the call decodes (fixed by ``max_tokens`` when replayed);
* ``parents``: ids of calls that must finish before this one is issued;
* ``tool_delay``: seconds between the last parent finishing and this call being
  issued (tool execution, thinking, a human).

Calls are stored in topological order. A workload file is JSONL: one header line
``{"format": "autellix-programs/1", ...}`` followed by one program per line, so a
generated workload can be saved, shared and replayed exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from autellix.errors import AutellixError

FORMAT = "autellix-programs/1"


class TraceError(AutellixError, ValueError):
    """A program or workload file is malformed. The message says where and why."""


@dataclass(frozen=True, slots=True)
class Call:
    id: str
    parents: tuple[str, ...] = ()
    shared_prompt_tokens: int = 0
    new_prompt_tokens: int = 1
    output_tokens: int = 1
    tool_delay: float = 0.0

    def __post_init__(self) -> None:
        if not self.id:
            raise TraceError("call id must be a non-empty string")
        if self.shared_prompt_tokens < 0 or self.new_prompt_tokens < 0:
            raise TraceError(f"call {self.id}: prompt token counts must be >= 0")
        if self.shared_prompt_tokens + self.new_prompt_tokens < 1:
            raise TraceError(f"call {self.id}: prompt must have at least one token")
        if self.output_tokens < 1:
            raise TraceError(f"call {self.id}: output_tokens must be >= 1")
        if self.tool_delay < 0:
            raise TraceError(f"call {self.id}: tool_delay must be >= 0")

    @property
    def prompt_tokens(self) -> int:
        return self.shared_prompt_tokens + self.new_prompt_tokens

    def to_dict(self) -> dict:
        return {"id": self.id, "parents": list(self.parents),
                "shared_prompt_tokens": self.shared_prompt_tokens,
                "new_prompt_tokens": self.new_prompt_tokens,
                "output_tokens": self.output_tokens, "tool_delay": self.tool_delay}

    @classmethod
    def from_dict(cls, d: dict) -> Call:
        try:
            return cls(id=str(d["id"]), parents=tuple(str(p) for p in d.get("parents", ())),
                       shared_prompt_tokens=int(d.get("shared_prompt_tokens", 0)),
                       new_prompt_tokens=int(d["new_prompt_tokens"]),
                       output_tokens=int(d["output_tokens"]),
                       tool_delay=float(d.get("tool_delay", 0.0)))
        except KeyError as e:
            raise TraceError(f"call is missing field {e.args[0]!r}: {d!r:.200}") from None
        except (TypeError, ValueError) as e:
            if isinstance(e, TraceError):
                raise
            raise TraceError(f"call has a bad field value ({e}): {d!r:.200}") from None


@dataclass(frozen=True, slots=True)
class Program:
    """A DAG of calls. ``arrival`` (seconds) is optional: drivers may assign one."""

    id: str
    calls: tuple[Call, ...]
    workload: str = ""
    arrival: float | None = None
    _index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.calls:
            raise TraceError(f"program {self.id}: has no calls")
        index: dict[str, int] = {}
        for i, c in enumerate(self.calls):
            if c.id in index:
                raise TraceError(f"program {self.id}: duplicate call id {c.id!r}")
            for p in c.parents:
                if p not in index:
                    raise TraceError(f"program {self.id}: call {c.id!r} names parent {p!r} "
                                     "that is not an earlier call "
                                     "(calls must be in topological order)")
            index[c.id] = i
        object.__setattr__(self, "_index", index)

    def call(self, call_id: str) -> Call:
        return self.calls[self._index[call_id]]

    @property
    def kind(self) -> str:
        """``single`` for a chain (each call has at most one child), else ``multi``."""
        children: dict[str, int] = {}
        for c in self.calls:
            if len(c.parents) > 1:
                return "multi"
            for p in c.parents:
                children[p] = children.get(p, 0) + 1
                if children[p] > 1:
                    return "multi"
        roots = sum(1 for c in self.calls if not c.parents)
        return "single" if roots == 1 else "multi"

    @property
    def output_tokens(self) -> int:
        return sum(c.output_tokens for c in self.calls)

    def depth(self) -> int:
        """Number of calls on the longest dependency chain."""
        d: dict[str, int] = {}
        for c in self.calls:
            d[c.id] = 1 + max((d[p] for p in c.parents), default=0)
        return max(d.values())

    def width(self) -> int:
        """Most calls at the same depth: the program's peak parallelism."""
        d: dict[str, int] = {}
        counts: dict[int, int] = {}
        for c in self.calls:
            d[c.id] = 1 + max((d[p] for p in c.parents), default=0)
            counts[d[c.id]] = counts.get(d[c.id], 0) + 1
        return max(counts.values())

    def children(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {c.id: [] for c in self.calls}
        for c in self.calls:
            for p in c.parents:
                out[p].append(c.id)
        return out

    def with_arrival(self, arrival: float) -> Program:
        return Program(id=self.id, calls=self.calls, workload=self.workload, arrival=arrival)

    def to_dict(self) -> dict:
        d: dict = {"id": self.id, "workload": self.workload,
                   "calls": [c.to_dict() for c in self.calls]}
        if self.arrival is not None:
            d["arrival"] = self.arrival
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Program:
        if not isinstance(d, dict):
            raise TraceError(f"a program must be a JSON object, got {type(d).__name__}")
        if "id" not in d or "calls" not in d:
            raise TraceError(f"program needs 'id' and 'calls': {d!r:.200}")
        if not isinstance(d["calls"], list):
            raise TraceError(f"program {d['id']}: 'calls' must be a list")
        arrival = d.get("arrival")
        return cls(id=str(d["id"]), workload=str(d.get("workload", "")),
                   arrival=None if arrival is None else float(arrival),
                   calls=tuple(Call.from_dict(c) for c in d["calls"]))


def dump_programs(programs: Iterable[Program], fp: IO[str], **meta) -> int:
    """Write a header line then one program per line. Returns the program count."""
    fp.write(json.dumps({"format": FORMAT, **meta}, sort_keys=True) + "\n")
    n = 0
    for p in programs:
        fp.write(json.dumps(p.to_dict(), separators=(",", ":")) + "\n")
        n += 1
    return n


def iter_programs(fp: IO[str], source: str = "<stream>") -> Iterator[Program]:
    for lineno, line in enumerate(fp, 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise TraceError(f"{source}:{lineno}: not valid JSON ({e.msg})") from None
        if isinstance(obj, dict) and "format" in obj and "calls" not in obj:
            if obj["format"] != FORMAT:
                raise TraceError(f"{source}:{lineno}: unsupported format {obj['format']!r}; "
                                 f"expected {FORMAT!r}")
            continue
        try:
            yield Program.from_dict(obj)
        except TraceError as e:
            raise TraceError(f"{source}:{lineno}: {e}") from None


def save_programs(programs: Iterable[Program], path: str | Path, **meta) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fp:
        return dump_programs(programs, fp, **meta)


def load_programs(path: str | Path) -> list[Program]:
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"workload file not found: {path}")
    with path.open() as fp:
        programs = list(iter_programs(fp, str(path)))
    if not programs:
        raise TraceError(f"{path}: contains no programs")
    ids = [p.id for p in programs]
    if len(set(ids)) != len(ids):
        raise TraceError(f"{path}: program ids are not unique")
    return programs
