"""Adapters of the generator: the Mongo repository and the provider/templating glue."""
