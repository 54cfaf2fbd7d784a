"""llmts catalog service: The model catalog of OpenRouter, Ollama and an OpenAI-compatible server."""
