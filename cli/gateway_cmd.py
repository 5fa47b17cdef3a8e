"""``autellix gateway``: serve the OpenAI-compatible gateway in front of running engines.

Safe by default: it listens on 127.0.0.1 only unless ``--host`` says otherwise, and
warns when it listens beyond this machine without an API key.
"""

from __future__ import annotations

import socket

import typer

from autellix.cli.common import USER_ERRORS, fail

DEFAULT_PORT = 18400


def register(app: typer.Typer) -> None:
    @app.command("gateway")
    def gateway_cmd(
        engine_url: list[str] = typer.Option(..., "--engine-url", "-e",
                                             help="engine base URL (repeat for each engine)"),
        host: str = typer.Option("127.0.0.1", help="address to listen on (default: this "
                                 "machine only; 0.0.0.0 exposes it, so set an API key)"),
        port: int = typer.Option(DEFAULT_PORT, help="port to listen on"),
        balancer: str = typer.Option("autellix", help="autellix, least_used or round_robin"),
        connect_timeout: float = typer.Option(2.0, help="seconds to connect to an engine"),
        read_timeout: float = typer.Option(600.0, help="longest engine silence, seconds"),
        health_interval: float = typer.Option(2.0, help="seconds between engine health probes"),
        ttl: float = typer.Option(600.0, help="seconds before an idle program is forgotten"),
        api_key: list[str] = typer.Option(None, "--api-key", envvar="AUTELLIX_API_KEY",
                                          help="require 'Authorization: Bearer KEY' on /v1/* "
                                          "(repeat for several keys; or set AUTELLIX_API_KEY)"),
        max_inflight_per_engine: int = typer.Option(1024, help="calls open on one engine at "
                                                    "once; past it the engine is skipped"),
        eject_after: int = typer.Option(3, help="consecutive engine failures that eject it"),
        log_level: str = typer.Option("warning", help="uvicorn log level"),
    ) -> None:
        """Serve the gateway (program-aware routing and tagging) until interrupted."""
        from autellix.gateway import create_app

        try:
            app_ = create_app(engine_url, balancer, connect_timeout=connect_timeout,
                              read_timeout=read_timeout, health_interval=health_interval, ttl=ttl,
                              api_keys=tuple(api_key or ()), eject_after=eject_after,
                              max_inflight_per_engine=max_inflight_per_engine)
        except USER_ERRORS as e:
            fail(str(e))
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as e:
                fail(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port")
        import uvicorn

        typer.echo(f"autellix gateway on http://{host}:{port} -> {', '.join(engine_url)} "
                   f"(balancer {balancer}{', API key required' if api_key else ''})", err=True)
        if not api_key and host not in ("127.0.0.1", "localhost", "::1"):
            typer.echo(f"warning: listening on {host} with no API key: anyone who can reach "
                       "this port can use the engines (set --api-key)", err=True)
        uvicorn.run(app_, host=host, port=port, log_level=log_level, access_log=False)
