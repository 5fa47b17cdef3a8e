"""SWE-agent trajectories (``nebius/SWE-agent-trajectories`` layout) → swe programs.

Each row has ``instance_id`` and ``trajectory: [{"role", "text", ...}]`` with
roles ``system``, ``user`` (observations, the issue) and ``ai`` (the agent;
``assistant`` is accepted too). Read from parquet (``.parquet``) or JSON
Lines (``.json``/``.jsonl``) through ``datasets.load_dataset`` on the local
file only.

* One call per ``ai`` message; its prompt is the trajectory before it. Each
  call shares the previous prompt and output; the new part is the messages
  since (the observation).
* Tool delays are not recorded: ``tool_delay`` seconds (default 0) before
  each call after the first.
* Program ids are ``swe-{instance_id}-{row}``: an instance has many rows.
"""

from __future__ import annotations

from pathlib import Path

from autellix.program import Call, Program, TraceError

from .tokens import as_text, require_file, token_counter

AGENT_ROLES = {"ai", "assistant"}


def _read_rows(path: Path):
    import datasets

    suffix = path.suffix.lower()
    builder = ("parquet" if suffix == ".parquet"
               else "json" if suffix in (".json", ".jsonl") else None)
    if builder is None:
        raise TraceError(f"{path}: expected a .parquet, .json or .jsonl file")
    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as e:  # datasets wraps parser errors in several exception types
        cause = e.__cause__ or e
        raise TraceError(f"{path}: cannot read as {builder} ({type(cause).__name__}: "
                         f"{str(cause)[:200]})") from None


def trajectory_program(row: dict, index: int, count, tool_delay: float,
                       source: str) -> Program | None:
    traj = row.get("trajectory")
    if not isinstance(traj, list):
        raise TraceError(f"{source}: row {index} has no 'trajectory' list")
    calls: list[Call] = []
    pending = 0
    for m, msg in enumerate(traj):
        if not isinstance(msg, dict) or "role" not in msg:
            raise TraceError(f"{source}: row {index} message {m} needs a 'role'")
        text = as_text(msg.get("text", msg.get("content")))
        if msg["role"] not in AGENT_ROLES:
            pending += count(text)
            continue
        prev = calls[-1] if calls else None
        shared = prev.prompt_tokens + prev.output_tokens if prev else 0
        calls.append(Call(id=f"s{len(calls)}", parents=(prev.id,) if prev else (),
                          shared_prompt_tokens=shared, new_prompt_tokens=max(pending, 1 - shared),
                          output_tokens=max(count(text), 1),
                          tool_delay=tool_delay if prev else 0.0))
        pending = 0
    if not calls:
        return None
    return Program(id=f"swe-{row.get('instance_id', 'row')}-{index}", calls=tuple(calls),
                   workload="swe")


def load_swe_agent(path: str | Path, tokenizer=None, limit: int | None = None, *,
                   tool_delay: float = 0.0) -> list[Program]:
    path = require_file(path)
    rows = _read_rows(path)
    if "trajectory" not in rows.column_names:
        raise TraceError(f"{path}: no 'trajectory' column (found {rows.column_names}); expected "
                         "the nebius/SWE-agent-trajectories layout")
    count = token_counter(tokenizer)
    programs = []
    for i, row in enumerate(rows):
        prog = trajectory_program(row, i, count, tool_delay, str(path))
        if prog is not None:
            programs.append(prog)
        if limit is not None and len(programs) >= limit:
            break
    return programs
