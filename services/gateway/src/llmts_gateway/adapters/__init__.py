"""Adapters of the gateway service: Mongo repositories, clients."""
