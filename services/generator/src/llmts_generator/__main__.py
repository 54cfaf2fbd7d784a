"""Run the generator service: ``python -m llmts_generator``."""

from __future__ import annotations

import uvicorn

from llmts_generator.settings import GeneratorSettings


def main() -> None:
    settings = GeneratorSettings()
    uvicorn.run(
        "llmts_generator.bootstrap:create_app",
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
