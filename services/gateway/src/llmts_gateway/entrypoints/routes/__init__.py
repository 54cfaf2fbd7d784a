"""One router per resource, mounted by ``entrypoints.http``."""
