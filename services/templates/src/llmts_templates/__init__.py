"""llmts templates service: Templates, versions, rendering preview and validation."""
