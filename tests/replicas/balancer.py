"""A TCP round-robin balancer in front of the replicas of one service, as a Kubernetes Service is: each new
connection goes to the next backend that accepts it, so a killed replica only costs the connections it held.

`python -m tests.replicas.balancer --port 9000 --backend 127.0.0.1:9001 --backend 127.0.0.1:9002`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class Balancer:
    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self._next = itertools.cycle(range(len(backends)))

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in self.backends:
            host, port = self.backends[next(self._next)]
            with contextlib.suppress(OSError):
                return await asyncio.wait_for(asyncio.open_connection(host, port), timeout=2.0)
        return None

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:  # every replica is down: refuse, as a Service without endpoints does
            client_w.close()
            return
        up_r, up_w = upstream
        await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))


async def main(port: int, backends: list[tuple[str, int]]) -> None:
    server = await asyncio.start_server(Balancer(backends).handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def _backend(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", type=_backend, action="append", required=True)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.backend))
