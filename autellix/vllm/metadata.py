"""Program metadata carried by a vLLM request (no vLLM import).

The gateway (or any client) tags a call through ``vllm_xargs``, which vLLM hands to
the engine as ``request.sampling_params.extra_args``:

* ``program_id`` (str, or int): the agent program the call belongs to;
* ``thread_id`` (str, or int): the program thread issuing it (informational);
* ``program_service`` (float >= 0, engine-seconds): the program's *global* service
  so far, as the gateway's process table knows it.

Fallbacks: without ``program_id`` the request's ``session_id`` (body field or the
``X-Session-ID`` header) names the program; without either the call is a one-call
program keyed by its request id. A malformed value is logged and ignored; it never
fails the request.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

logger = logging.getLogger("autellix.vllm")

MAX_ID_LEN = 256


@dataclass(frozen=True, slots=True)
class CallMeta:
    program_id: str
    thread_id: str | None = None
    program_service: float | None = None
    source: str = "xargs"  # "xargs", "session" or "request"


def _as_id(value, key: str, request_id: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        logger.warning("autellix: request %s: %s must be a string, got %s; ignoring it",
                       request_id, key, type(value).__name__)
        return None
    s = str(value)
    if not s or len(s) > MAX_ID_LEN:
        logger.warning("autellix: request %s: %s must have 1..%d characters; ignoring it",
                       request_id, key, MAX_ID_LEN)
        return None
    return s


def _as_service(value, request_id: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        logger.warning("autellix: request %s: program_service must be a number, got %s; "
                       "ignoring it", request_id, type(value).__name__)
        return None
    v = float(value)
    if not math.isfinite(v) or v < 0:
        logger.warning("autellix: request %s: program_service must be finite and >= 0, "
                       "got %r; ignoring it", request_id, value)
        return None
    return v


def parse_call_meta(request_id: str, extra_args, session_id=None) -> CallMeta:
    """Program metadata of one request; never raises."""
    xargs = extra_args
    if xargs is not None and not isinstance(xargs, dict):
        logger.warning("autellix: request %s: extra_args is a %s, not a dict; ignoring it",
                       request_id, type(xargs).__name__)
        xargs = None
    xargs = xargs or {}
    pid = _as_id(xargs.get("program_id"), "program_id", request_id)
    tid = _as_id(xargs.get("thread_id"), "thread_id", request_id)
    service = _as_service(xargs.get("program_service"), request_id)
    if pid is not None:
        return CallMeta(pid, tid, service, "xargs")
    session = _as_id(session_id, "session_id", request_id)
    if session is not None:
        return CallMeta(session, tid, service, "session")
    # a one-call program: service from another engine cannot belong to it
    return CallMeta(f"req:{request_id}", tid, None, "request")
