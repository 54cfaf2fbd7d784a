"""Protocol-faithful fake OpenRouter and Ollama servers (see tests/fakes/README.md)."""
