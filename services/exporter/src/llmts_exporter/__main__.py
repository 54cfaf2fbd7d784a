"""Run the exporter service: ``python -m llmts_exporter``."""

from __future__ import annotations

import uvicorn

from llmts_exporter.settings import ExporterSettings


def main() -> None:
    settings = ExporterSettings()
    uvicorn.run(
        "llmts_exporter.bootstrap:create_app",
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
