"""Shared contracts and plumbing for the LLM Template System services. No business logic lives here."""
