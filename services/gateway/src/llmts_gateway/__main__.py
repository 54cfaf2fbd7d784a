"""Run the gateway service: ``python -m llmts_gateway``."""

from __future__ import annotations

import uvicorn

from llmts_gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    uvicorn.run(
        "llmts_gateway.bootstrap:create_app",
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        ws_ping_interval=20,
        server_header=False,  # no "server: uvicorn" banner
    )


if __name__ == "__main__":
    main()
