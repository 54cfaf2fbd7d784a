"""Adapters of the exporter service: Mongo repositories, clients."""
