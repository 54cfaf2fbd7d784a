"""Run the catalog service: ``python -m llmts_catalog``."""

from __future__ import annotations

import uvicorn

from llmts_catalog.settings import CatalogSettings


def main() -> None:
    settings = CatalogSettings()
    uvicorn.run(
        "llmts_catalog.bootstrap:create_app",
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        ws_ping_interval=20,
    )


if __name__ == "__main__":
    main()
