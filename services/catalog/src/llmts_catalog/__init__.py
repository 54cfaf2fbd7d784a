"""llmts catalog service: The model catalog of OpenRouter and Ollama."""
