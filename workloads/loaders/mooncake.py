"""Mooncake FAST'25 traces → programs (sessions inferred from ``hash_ids``).

Format (JSON Lines): ``{"timestamp", "input_length", "output_length", "hash_ids"}``;
``timestamp`` in **milliseconds** (``time_unit=0.001`` s per unit) and one
hash id per **512-token** block (``block_size=512``); ``len(hash_ids)`` is
``ceil(input_length / 512)``. Every request of the conversation trace starts
with block 0 (a common system prompt), so a shared first block says nothing
about sessions.

Session rule (a documented heuristic; the trace has no session ids): a
request *continues* the latest earlier request ``p`` whose blocks, except
possibly its last (partial) one, are a prefix of the request's ``hash_ids``,
provided they share at least ``min_shared_blocks`` (default 2) blocks and
the request's prompt is at least as long as ``p``'s. The longest such match
wins. Matching uses a trie over ``hash_ids``: O(total blocks). Unlinked
requests start programs of their own. See :mod:`.trace_sessions` for tokens,
delays and arrivals.
"""

from __future__ import annotations

from pathlib import Path

from .tokens import require_file
from .trace_sessions import TraceRequest, build_programs, check_lengths, read_jsonl_rows, row_time

FIELDS = ("timestamp", "input_length", "output_length", "hash_ids")


def link_sessions(requests: list[TraceRequest], min_shared_blocks: int = 2) -> None:
    """Set ``parent`` on each request that continues an earlier one (in time order)."""
    trie: dict = {}
    for i, r in enumerate(requests):
        node, best = trie, None
        for depth, h in enumerate(r.hash_ids, 1):
            node = node.get(("child", h))
            if node is None:
                break
            owner = node.get("owner")
            if owner is not None and depth >= min_shared_blocks and \
                    requests[owner].input_length <= r.input_length:
                best = owner
        r.parent = best
        node = trie
        n = len(r.hash_ids)
        for depth, h in enumerate(r.hash_ids, 1):
            node = node.setdefault(("child", h), {})
            if depth >= n - 1:
                node["owner"] = i


def load_mooncake(path: str | Path, tokenizer=None, limit: int | None = None, *,
                  block_size: int = 512, time_unit: float = 0.001, min_shared_blocks: int = 2,
                  delay: str = "gap") -> list:
    """``tokenizer`` is ignored: the trace has lengths, not text."""
    path = require_file(path)
    requests = []
    for lineno, row in read_jsonl_rows(path, FIELDS):
        i, o = check_lengths(path, lineno, row)
        t = row_time(path, lineno, row, time_unit)
        requests.append(TraceRequest(key=str(len(requests)), time=t, input_length=i,
                                     output_length=o, hash_ids=tuple(row["hash_ids"])))
    requests.sort(key=lambda r: (r.time, int(r.key)))
    link_sessions(requests, min_shared_blocks)
    return build_programs(requests, prefix="mooncake", workload="mooncake",
                          block_size=block_size, delay=delay, limit=limit)
