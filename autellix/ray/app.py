"""Build and deploy the Ray Serve application: N vLLM replicas, our router, the ingress.

``build_app(cfg)`` returns the bound application (what ``serve.run`` or a KubeRay
``RayService`` takes: ``import_path: autellix.ray.app:app_from_env`` reads the
settings from ``AUTELLIX_RAY_CONFIG``). ``deploy(cfg, address, host, port)``
starts a local Ray instance (``address`` None) or joins a cluster (``auto``, or
``ray://head:10001``), starts Serve's HTTP proxy on ``host:port`` and runs the
application, waiting until every replica is up. A local instance binds 127.0.0.1.

Replica resources: ``replica_cpus`` (and ``replica_gpus``) per vLLM replica; the
ingress reserves none (it only parses and relays). A local instance gets at least
as many logical CPUs as the replicas reserve, so a small machine still starts
its replicas (Ray's CPU count is a scheduling budget, not a limit).
"""

from __future__ import annotations

import json
import os

from autellix.ray.config import RayServeConfig

ENGINE_DEPLOYMENT = "autellix-engine"
INGRESS_DEPLOYMENT = "autellix-ingress"


def build_app(cfg: RayServeConfig):
    from ray import serve
    from ray.serve.config import RequestRouterConfig

    from autellix.ray.engine import VLLMReplica
    from autellix.ray.ingress import Ingress
    from autellix.ray.router import ROUTER_CLASS

    engine = serve.deployment(
        VLLMReplica, name=ENGINE_DEPLOYMENT, num_replicas=cfg.replicas,
        ray_actor_options={"num_cpus": cfg.replica_cpus, "num_gpus": cfg.replica_gpus},
        request_router_config=RequestRouterConfig(request_router_class=ROUTER_CLASS,
                                                  request_router_kwargs=cfg.router_kwargs()),
        max_ongoing_requests=1024, health_check_period_s=2.0, health_check_timeout_s=30.0,
        graceful_shutdown_timeout_s=20.0)
    ingress = serve.deployment(Ingress, name=INGRESS_DEPLOYMENT, num_replicas=1,
                               ray_actor_options={"num_cpus": 0}, max_ongoing_requests=100_000)
    return ingress.bind(engine.bind(cfg.engine, cfg.read_timeout), cfg.to_dict())


def app_from_env():
    """The application from the JSON settings in ``AUTELLIX_RAY_CONFIG`` (KubeRay)."""
    return build_app(RayServeConfig(**json.loads(os.environ.get("AUTELLIX_RAY_CONFIG", "{}"))))


LOCAL_PROXY_TIMEOUTS = {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "300",
                        "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "30"}


def init_ray(address: str | None = None, *, num_cpus: float | None = None) -> None:
    """Start a local Ray instance (``address`` None) or join the cluster at ``address``."""
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, logging_level="warning", log_to_driver=False)
    else:  # a local instance listens on loopback only, as the gateway does by default
        # Serve kills an HTTP proxy that is not ready within 5 s, or whose health check
        # takes over 10 s. On a busy 2-core machine a proxy's start (imports, uvicorn)
        # has taken longer: it was killed before it ran and `serve.start` failed, once
        # at 5 s and once at 60 s (both cores held by a benchmark beside the tests).
        # The raylet and its actors inherit this environment, so a local instance
        # waits longer; a proxy that never starts still fails, after 300 s. A cluster
        # joined by address keeps its own settings.
        for var, seconds in LOCAL_PROXY_TIMEOUTS.items():
            os.environ.setdefault(var, seconds)
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="warning",
                 log_to_driver=False, _node_ip_address="127.0.0.1")


def deploy(cfg: RayServeConfig, address: str | None = None, host: str = "127.0.0.1",
           port: int = 18400) -> str:
    """Deploy the application and return the ingress's base URL once it is running."""
    from ray import serve

    local_cpus = max(float(os.cpu_count() or 1), cfg.replicas * cfg.replica_cpus + 1)
    init_ray(address, num_cpus=None if address else local_cpus)
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(cfg), name=cfg.app_name, route_prefix=cfg.route_prefix)
    return f"http://{host}:{port}"


def shutdown() -> None:
    """Remove the application and stop Serve and the Ray instance this process joined."""
    import ray
    from ray import serve

    if ray.is_initialized():
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
