"""Adapters of the catalog service: Mongo repositories, clients."""
