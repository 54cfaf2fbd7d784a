"""Pure domain of the gateway service: models and rules; stdlib and pydantic only."""
