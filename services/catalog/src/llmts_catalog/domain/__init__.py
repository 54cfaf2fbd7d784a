"""Pure domain of the catalog service: models and rules; stdlib and pydantic only."""
