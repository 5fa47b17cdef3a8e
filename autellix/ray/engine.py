"""One Ray Serve replica = one vLLM OpenAI server running the Autellix scheduler.

Each replica starts ``python -m vllm.entrypoints.openai.api_server`` with
:func:`autellix.vllm.launch.launch_engines` (the same command line as ``autellix
serve``: ``--scheduler-cls autellix.vllm.scheduler.AutellixScheduler``, the
scheduler's settings in ``--additional-config``) on a free port of its node, and
relays calls to it over HTTP on 127.0.0.1. Why a subprocess and not vLLM's engine
in the replica (or ``ray.serve.llm``): see ``autellix/ray/__init__.py``.

* The body is relayed as the ingress built it (the router has already written
  ``vllm_xargs.program_service`` into it), so what reaches vLLM is byte for byte
  what the gateway sends.
* ``stream`` is a generator: its first item is the head (``status``,
  ``content_type``, ``engine``), then the raw upstream chunks, as the gateway
  relays them. Cancelling it (the client went away) closes the upstream
  connection, so vLLM aborts the request and frees its KV cache.
* The server is started from a thread that lives as long as the replica: the
  server gets SIGTERM when the thread that launched it dies
  (``PR_SET_PDEATHSIG``), and Ray may run ``__init__`` on a short-lived thread.
  So a replica killed by any means takes its vLLM server with it.
* ``check_health`` fails once the server has exited, so Serve replaces the
  replica; in-flight calls of a replica that dies fail at the ingress with a
  502 (or an SSE ``error`` event) naming the replica.
"""

from __future__ import annotations

import threading
from typing import Any

import aiohttp

from autellix.errors import EngineError


class VLLMReplica:
    """A vLLM OpenAI server (subprocess) behind a Serve replica."""

    engine: Any = None  # the EngineProcess, once started

    def __init__(self, engine: dict, read_timeout: float = 600.0, start_timeout: float = 600.0):
        self._settings = dict(engine)
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._keeper = threading.Thread(target=self._keep, name="autellix-vllm", daemon=True,
                                        args=(start_timeout,))
        self._keeper.start()
        self._ready.wait()
        if self._error is not None:
            raise EngineError(f"vLLM replica did not start: {self._error}") from self._error
        self.url = self.engine.url
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0,
                                              sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _keep(self, timeout: float) -> None:
        from autellix.vllm.launch import free_port_run, launch_engines, stop_engines

        try:
            self.engine = launch_engines(1, base_port=free_port_run(1), timeout=timeout,
                                         **self._settings)[0]
        except BaseException as e:  # noqa: BLE001 - reported by __init__
            self._error = e
        finally:
            self._ready.set()
        self._stop.wait()
        if self.engine is not None:
            stop_engines([self.engine])

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, auto_decompress=False,
                                                  trust_env=False)
        return self._session

    async def call(self, route: dict, path: str, body: dict, headers: dict) -> dict:
        """A non-streaming call: ``{status, content_type, body, engine}``."""
        async with self._client().post(self.url + path, json=body, headers=headers) as r:
            content = await r.read()
            return {"status": r.status, "content_type": r.headers.get("content-type",
                                                                      "application/json"),
                    "body": content, "engine": self.url}

    async def stream(self, route: dict, path: str, body: dict, headers: dict):
        """A streaming call: the head, then the upstream's chunks as they arrive."""
        async with self._client().post(self.url + path, json=body, headers=headers) as r:
            yield {"status": r.status, "content_type": r.headers.get("content-type",
                                                                     "text/event-stream"),
                   "engine": self.url}
            async for chunk in r.content.iter_any():
                yield chunk

    async def models(self) -> bytes:
        async with self._client().get(self.url + "/v1/models") as r:
            return await r.read()

    def info(self) -> dict:
        return {"engine": self.url, "alive": self.engine.alive(),
                "log": str(self.engine.log_path)}

    def check_health(self) -> None:
        if not self.engine.alive():
            raise EngineError(f"the vLLM server of this replica exited (log "
                              f"{self.engine.log_path})")

    def __del__(self) -> None:
        self._stop.set()
