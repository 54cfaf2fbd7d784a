"""Pure domain of the templates service: models and rules; stdlib and pydantic only."""
