"""Helpers shared by every test suite (services/*/tests, libs/*/tests, tests/e2e, tests/chaos, bench).

- ``tests.support.tokens``: an Ed25519 signing key, access tokens signed with it, and a ``JwksVerifier`` that trusts it.
- ``tests.support.net``: a free TCP port.
- ``tests.support.serve``: serve an ASGI app with uvicorn (a task in the running loop, or a thread) and wait until it
  is ready; run a service as ``python -m <package>`` and wait for its ``/ready``.
- ``tests.support.names``: unique database names, topic prefixes, consumer groups and ids per run.
"""
