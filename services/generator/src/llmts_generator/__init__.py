"""llmts generator service: Runs generation jobs."""
