"""What a replay run tells its user at the end: why calls failed, what the fit clipped,
and whether the run passes (pure functions over call and program records).

Failure reasons are grouped into a few kinds a reader can act on (the context was too
short, the engine timed out, the connection broke, an HTTP status), each with its
count of calls and programs and one example message, most frequent first.

A run **passes** when at most ``max_failed`` programs did not complete (failed, or
aborted because a parent call failed). The CLI's default is 0, so a CI gate fails on
any lost program; a benchmark that tolerates a few passes ``--max-failed N``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from autellix.metrics import CallRecord, ProgramRecord

DEFAULT_MAX_FAILED = 0

_CONTEXT = re.compile(r"context length|max_model_len|maximum model length|too long|"
                      r"exceeds? the (model|context)", re.I)


def failure_kind(error: str) -> str:
    """A short, stable name for the reason a call failed."""
    if _CONTEXT.search(error):
        return "context length exceeded"
    if error.startswith("timed out"):
        return "timed out"
    m = re.match(r"HTTP (\d{3})", error)
    if m:
        return f"HTTP {m.group(1)}"
    m = re.match(r"(\w*(Connect|Protocol|Read|Write|Network|Pool)\w*)", error)
    if m:
        return f"connection: {m.group(1)}"
    words = re.sub(r"\d+", "#", error).split()
    return " ".join(words[:6]) or "unknown error"


@dataclass(frozen=True)
class FailureReason:
    kind: str
    calls: int
    programs: int
    example: str


def failure_reasons(calls: list[CallRecord]) -> list[FailureReason]:
    """Failed calls grouped by :func:`failure_kind`, most calls first."""
    groups: dict[str, list[CallRecord]] = {}
    for c in calls:
        if c.status != "completed":
            groups.setdefault(failure_kind(c.error or c.status), []).append(c)
    out = [FailureReason(k, len(cs), len({c.program_id for c in cs}), cs[0].error or cs[0].status)
           for k, cs in groups.items()]
    return sorted(out, key=lambda r: (-r.calls, r.kind))


def lost_programs(programs: list[ProgramRecord]) -> int:
    return sum(p.status != "completed" for p in programs)


def verdict(programs: list[ProgramRecord], calls: list[CallRecord],
            max_failed: int = DEFAULT_MAX_FAILED) -> str | None:
    """``None`` if the run passes, else the one line that says why it does not."""
    lost = lost_programs(programs)
    failed_calls = sum(c.status != "completed" for c in calls)
    reasons = failure_reasons(calls)
    top = f"; most often: {reasons[0].kind} ({reasons[0].calls})" if reasons else ""
    if calls and failed_calls == len(calls):
        return f"every call failed ({failed_calls} of {len(calls)}){top}"
    if lost > max_failed:
        return (f"{lost} of {len(programs)} programs failed, more than --max-failed "
                f"{max_failed}{top}")
    return None


def fit_line(calls: list[CallRecord], max_model_len: int | None, fit: bool,
             source: str = "the endpoint's") -> str:
    """One line: how many calls were clipped to the context, and by how much."""
    if not max_model_len:
        return "fit: the endpoint reports no context length; prompts sent at recorded length"
    ctx = f"{source} {max_model_len:,}-token context"
    if not fit:
        over = sum(failure_kind(c.error) == "context length exceeded" for c in calls
                   if c.status != "completed")
        return f"fit: off (--no-fit); {over} of {len(calls)} calls failed on {ctx}"
    clipped = [c.clipped_tokens for c in calls if c.clipped_tokens > 0]
    if not clipped:
        return f"fit: no call needed clipping to {ctx}"
    total = sum(clipped)
    return (f"fit: {len(clipped)} of {len(calls)} calls clipped to {ctx}: {total:,} tokens "
            f"in all, mean {total / len(clipped):,.0f}, max {max(clipped):,} per clipped call")

