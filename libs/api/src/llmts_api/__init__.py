"""The public REST contract of the LLM Template System.

One module per resource family (``templates``, ``catalog``, ``auth``, ``generation``, ``exports``, ``errors``).
Each service's routes and the gateway's routes declare their bodies, responses and query parameters with these
classes, so the OpenAPI document of a service and the gateway's agree by construction. Only pydantic is
imported here (an import-linter contract keeps it so): no framework, no service, no I/O.
"""
