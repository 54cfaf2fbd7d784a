"""Adapters of the templates service: Mongo repositories, clients."""
