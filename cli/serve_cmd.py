"""``autellix serve``: start N vLLM engines with the Autellix scheduler, plus the gateway.

With no ``--model`` it serves the tiny offline CPU model (random weights) with a
32,768-token context (every built-in workload's calls fit it, the longest swe turns
after ``autellix replay`` fits them; why 32k: :mod:`autellix.vllm.launch`), so a
newcomer sees the whole stack work on a laptop. With ``--model`` the context is the
model's own unless ``--max-model-len`` says otherwise. Engines listen on
``--port``, ``--port + 1``, ...; the gateway (``--gateway``, default) on
``--gateway-port``. Ctrl-C or SIGTERM stops everything; engine process groups are
killed, so nothing is orphaned. Errors are one line with a non-zero exit code.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import typer

from autellix.cli.common import USER_ERRORS
from autellix.cli.common import fail as _fail


def _parse_floats(text: str | None, what: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{what} must be comma-separated numbers, got {text!r}") from None


def _queue_settings(boundaries, quanta, beta, starvation_floor, no_starvation,
                    schedule_interval) -> dict:
    q: dict = {}
    if boundaries is not None:
        q["boundaries"] = _parse_floats(boundaries, "--boundaries")
    if quanta is not None:
        q["quanta"] = _parse_floats(quanta, "--quanta")
    if beta is not None:
        q["beta"] = beta
    if starvation_floor is not None:
        q["starvation_floor"] = starvation_floor
    if no_starvation:
        q["starvation"] = False
    if schedule_interval is not None:
        q["schedule_interval"] = schedule_interval
    return q




def serve(*, engines: int = 1, policy: str = "plas", model: str | None = None,
          port: int = 18500, max_num_seqs: int = 8, max_model_len: int | None = None,
          kv_cache_bytes: int = 256 << 20, queue: dict | None = None, gateway: bool = True,
          gateway_port: int = 18400, balancer: str = "autellix", log_dir: str | None = None,
          served_model_name: str = "tiny", timeout: float = 300) -> None:
    """Start engines (+ gateway) and block until Ctrl-C / SIGTERM; always clean up."""
    from rich.console import Console

    from autellix.vllm.launch import TINY_MAX_MODEL_LEN, launch_engines, stop_engines

    console = Console(stderr=True)
    gw_app = _gateway_app([f"http://127.0.0.1:{port + i}" for i in range(engines)], balancer,
                          console, policy) if gateway else None
    if gw_app is not None:
        _check_port(gateway_port, "--gateway-port")
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    started = []
    gw_server = gw_thread = None
    try:
        with console.status(f"starting {engines} engine(s), policy {policy} ..."):
            try:
                started = launch_engines(engines, policy=policy, model=model, base_port=port,
                                         max_num_seqs=max_num_seqs, max_model_len=max_model_len,
                                         kv_cache_bytes=kv_cache_bytes, queue=queue,
                                         served_model_name=served_model_name, log_dir=log_dir,
                                         wait=False)
                for eng in started:
                    _wait(eng, timeout, stop)
            except USER_ERRORS as e:  # a bad setting, a busy port, an engine that died
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                log = f" (see {started[0].log_path.parent})" if started else ""
                _fail(first + log)
        if stop.is_set():
            return
        for eng in started:
            ctx = max_model_len or (TINY_MAX_MODEL_LEN if model is None else "model's")
            console.print(f"[green]engine[/] {eng.url}/v1  policy={policy}  context={ctx}  "
                          f"log={eng.log_path}")
        if gw_app is not None:
            gw_server, gw_thread = _start_gateway(gw_app, gateway_port)
            console.print(f"[green]gateway[/] http://127.0.0.1:{gateway_port}/v1  "
                          f"balancer={balancer}")
        console.print("[bold]ready[/]; Ctrl-C to stop")
        while not stop.wait(1.0):
            dead = [e for e in started if not e.alive()]
            if dead:
                _fail(f"engine on port {dead[0].port} exited; log {dead[0].log_path}")
            if gw_thread is not None and not gw_thread.is_alive():
                _fail(f"the gateway on port {gateway_port} stopped")
        console.print("stopping ...")
    finally:
        if gw_server is not None:
            gw_server.should_exit = True
            gw_thread.join(timeout=10)
        stop_engines(started)
        for s, h in previous.items():
            signal.signal(s, h)


def _wait(eng, timeout: float, stop: threading.Event) -> None:
    import time

    from autellix.errors import EngineError

    deadline = time.monotonic() + timeout
    while not stop.is_set():
        try:
            eng.wait_healthy(timeout=1.0)
            return
        except EngineError:
            if not eng.alive() or time.monotonic() > deadline:
                raise


# The gateway marks an engine down on one slow /health probe. Local CPU engines under
# load (a long prefill on 2 busy cores) answered late enough at the gateway's 1 s
# default for it to mark the only engine down and fail calls with 503 (seen replaying
# ``mixed``); a dead engine still shows at once (connection refused), so wait longer.
HEALTH_TIMEOUT = 10.0


def _gateway_app(urls, balancer: str, console, policy: str = ""):
    """The gateway's app, built before any engine starts so a bad setting fails fast.

    It is told the engines' policy, which it reports in ``/v1/models`` for clients."""
    try:
        from autellix.gateway import create_app
    except ImportError:  # pragma: no cover - the gateway ships with autellix
        console.print("[yellow]gateway not available; serving engines only[/]")
        return None
    try:
        return create_app(urls, balancer, engine_policy=policy, health_timeout=HEALTH_TIMEOUT)
    except USER_ERRORS as e:
        _fail(f"gateway: {e}")


def _check_port(port: int, option: str) -> None:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            _fail(f"port {port} on 127.0.0.1 is in use; pick another {option}")


def _start_gateway(app, port: int):
    """Serve the gateway with uvicorn in a daemon thread; stop it with ``should_exit``."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)
    t = threading.Thread(target=server.run, daemon=True, name="autellix-gateway")
    t.start()
    return server, t


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the ``autellix`` Typer app."""
    from autellix.vllm.launch import engine_policies

    policies = ", ".join(engine_policies())

    @app.command("serve")
    def serve_cmd(
        engines: int = typer.Option(1, "--engines", "-n", min=1, help="number of vLLM engines"),
        policy: str = typer.Option("plas", help=f"scheduler: {policies}"),
        model: str = typer.Option(None, help="model path or name "
                                             "(default: tiny offline CPU model)"),
        port: int = typer.Option(18500, help="first engine port (engines use port, port+1, ...)"),
        max_num_seqs: int = typer.Option(8, min=1, help="max running sequences per engine"),
        max_model_len: int = typer.Option(None, min=16,
                                          help="context length, tokens (default: 32768 for "
                                               "the tiny model, else the model's own)"),
        kv_cache_bytes: int = typer.Option(256 << 20, min=1 << 20,
                                           help="KV cache bytes per engine"),
        boundaries: str = typer.Option(None, help="fixed queue boundaries, engine-seconds, "
                                                  "e.g. 0.25,0.5,1 (default: 16 step times, "
                                                  "doubling)"),
        quanta: str = typer.Option(None, help="per-queue quanta, engine-seconds "
                                              "(one more than boundaries)"),
        beta: float = typer.Option(None, help="anti-starvation ratio"),
        starvation_floor: float = typer.Option(None, help="anti-starvation service floor, s"),
        no_starvation: bool = typer.Option(False, "--no-starvation",
                                           help="disable anti-starvation"),
        schedule_interval: int = typer.Option(None, help="policy pass every N engine steps"),
        gateway: bool = typer.Option(True, "--gateway/--no-gateway", help="also serve the gateway"),
        gateway_port: int = typer.Option(18400, help="gateway port"),
        balancer: str = typer.Option("autellix", help="gateway balancer"),
        log_dir: Path = typer.Option(None, help="engine log directory (default: a temp dir)"),
        config_out: Path = typer.Option(None, help="write the resolved configuration here (JSON)"),
    ) -> None:
        """Serve N vLLM engines with the Autellix scheduler (and the gateway) until Ctrl-C."""
        queue = _queue_settings(boundaries, quanta, beta, starvation_floor, no_starvation,
                                schedule_interval)
        if config_out is not None:
            try:
                config_out.write_text(json.dumps({
                    "engines": engines, "policy": policy, "model": model, "port": port,
                    "max_num_seqs": max_num_seqs, "max_model_len": max_model_len,
                    "kv_cache_bytes": kv_cache_bytes, "queue": queue, "gateway": gateway,
                    "gateway_port": gateway_port, "balancer": balancer}, indent=1) + "\n")
            except OSError as e:
                _fail(f"cannot write {config_out}: {e.strerror or e}")
        serve(engines=engines, policy=policy, model=model, port=port, max_num_seqs=max_num_seqs,
              max_model_len=max_model_len, kv_cache_bytes=kv_cache_bytes, queue=queue or None,
              gateway=gateway, gateway_port=gateway_port, balancer=balancer,
              log_dir=None if log_dir is None else str(log_dir))
