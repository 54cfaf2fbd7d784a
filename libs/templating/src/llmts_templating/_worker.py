"""Entry point of one render worker process (started by :class:`llmts_templating.pool.RenderPool`):
``python -m llmts_templating._worker <read fd> <write fd> <RenderLimits as JSON>``."""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from llmts_templating.pool import serve
from llmts_templating.render import RenderLimits


def main(argv: list[str]) -> None:
    inbox = Connection(int(argv[0]), writable=False)
    outbox = Connection(int(argv[1]), readable=False)
    serve(inbox, outbox, RenderLimits.model_validate_json(argv[2]))


if __name__ == "__main__":
    main(sys.argv[1:])
