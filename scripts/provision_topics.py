"""Create every topic and its dead-letter topic, idempotently: ``llmts_common.provision_topics`` (the same module
the Kubernetes topics Job runs from a service image). Settings (env) are described there."""

from __future__ import annotations

import sys

from llmts_common.provision_topics import main

if __name__ == "__main__":
    sys.exit(main())
