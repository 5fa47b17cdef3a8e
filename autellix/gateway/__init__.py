"""OpenAI-compatible gateway in front of N engines: process table, balancer, tagging.

``create_app(engine_urls, balancer="autellix", **settings)`` builds the FastAPI app;
``run_gateway(engine_urls, host=..., port=..., balancer=...)`` serves it.
"""

from autellix.gateway.app import create_app, run_gateway
from autellix.gateway.config import GatewayConfig, GatewayConfigError

__all__ = ["create_app", "run_gateway", "GatewayConfig", "GatewayConfigError"]
