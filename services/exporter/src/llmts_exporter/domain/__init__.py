"""Pure domain of the exporter service: models and rules; stdlib and pydantic only."""
