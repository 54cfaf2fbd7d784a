"""Run the auth service: ``python -m llmts_auth``; manage roles: ``python -m llmts_auth admin grant <email>``."""

from __future__ import annotations

import sys

import uvicorn

from llmts_auth.settings import AuthSettings


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "admin":
        from llmts_auth.entrypoints import cli

        sys.exit(cli.main(sys.argv[2:]))
    settings = AuthSettings()
    uvicorn.run(
        "llmts_auth.bootstrap:create_app",
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
