"""``autellix serve --backend ray``: the engines and the router on Ray Serve.

With no ``--address`` it starts a local Ray instance; with ``--address auto`` (or
``ray://head:10001``) it joins a running cluster (``ray start --head`` /
``ray start --address``). Either way it deploys the application of
:mod:`autellix.ray.app` (N vLLM replicas with the Autellix scheduler, our
request router, the OpenAI ingress on ``--host:--gateway-port``) and blocks
until Ctrl-C or SIGTERM, then removes what it deployed: the application on a
cluster it joined, the whole Ray instance it started. Ray missing, a bad
setting, or a deployment that fails: one line and a non-zero exit.
"""

from __future__ import annotations

import os
import signal
import threading

from autellix.cli.common import USER_ERRORS, fail


def serve_ray(*, replicas: int, address: str | None, host: str, port: int, balancer: str,
              engine: dict, replica_cpus: float, replica_gpus: float) -> None:
    from rich.console import Console

    from autellix.ray import require_ray
    from autellix.ray.config import RayServeConfig

    console = Console(stderr=True)
    # Ray otherwise installs absl's failure signal handler (read when Ray is imported),
    # which answers SIGTERM with a stack dump and an abort (exit 134) mid-clean-up
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    try:
        require_ray()
        cfg = RayServeConfig(replicas=replicas, balancer=balancer, engine=engine,
                             replica_cpus=replica_cpus, replica_gpus=replica_gpus)
    except USER_ERRORS as e:
        fail(str(e))
    from ray.exceptions import RayError
    from ray.serve.exceptions import RayServeException

    from autellix.ray.app import deploy, shutdown

    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    where = f"the cluster at {address}" if address else "a local Ray instance"
    try:
        with console.status(f"deploying {replicas} vLLM replica(s) on {where} ..."):
            try:
                url = deploy(cfg, address=address, host=host, port=port)
            except (RayError, RayServeException, ConnectionError, *USER_ERRORS) as e:
                fail(f"Ray Serve deployment failed: {_first_line(e)}{_auth_hint(address)}")
        # ray.init replaced our SIGTERM handler with one that exits mid-flight
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        console.print(f"[green]ray serve[/] {url}/v1  replicas={replicas}  "
                      f"policy={cfg.policy}  balancer={balancer}  ({where})")
        console.print("[bold]ready[/]; Ctrl-C to stop")
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping ...")
        _remove(cfg.app_name, joined=bool(address), shutdown=shutdown)
        signal.signal(signal.SIGTERM, previous)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().strip("'\"")
    return text.splitlines()[0] if text else repr(e)


def _auth_hint(address: str | None) -> str:
    """Ray 2.60 clusters use token authentication, and a driver given an explicit
    address does not turn it on by itself (``--address auto`` on a node does)."""
    if address and address != "auto" and "RAY_AUTH_MODE" not in os.environ:
        return ("; if the cluster uses token authentication (Ray's default), set "
                "RAY_AUTH_MODE=token and give this machine the cluster's token "
                "(~/.ray/auth_token or RAY_AUTH_TOKEN)")
    return ""


def _remove(app_name: str, *, joined: bool, shutdown) -> None:
    """Remove our application from a joined cluster, or stop the local Ray we started."""
    import ray

    if not ray.is_initialized():
        return
    if joined:
        from ray import serve

        try:
            serve.delete(app_name)
        finally:
            ray.shutdown()
    else:
        shutdown()
