"""A fake OpenTelemetry collector: accepts OTLP/HTTP protobuf trace exports and keeps the spans in memory.

python -m tests.fakes.otlp --port 4318     # services: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318/v1/traces
GET /spans?trace_id=<32 hex>               # [{service, name, kind, trace_id, span_id, parent_span_id}]
"""

from __future__ import annotations

import argparse
import gzip
from typing import Any

import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_SPANS = 200_000


def create_app() -> Starlette:
    spans: list[dict[str, Any]] = []

    async def export(request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        for rs in req.resource_spans:
            service = next(
                (a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "unknown"
            )
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append(
                        {
                            "service": service,
                            "name": s.name,
                            "kind": int(s.kind),
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent_span_id": s.parent_span_id.hex(),
                        }
                    )
        del spans[:-MAX_SPANS]
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    async def query(request: Request) -> JSONResponse:
        trace_id = request.query_params.get("trace_id")
        return JSONResponse([s for s in spans if trace_id is None or s["trace_id"] == trace_id])

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"spans": len(spans)})

    return Starlette(
        routes=[
            Route("/v1/traces", export, methods=["POST"]),
            Route("/spans", query, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
