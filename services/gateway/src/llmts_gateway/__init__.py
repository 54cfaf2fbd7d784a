"""llmts gateway service: Public REST API and live progress; authenticates every request and turns commands into Kafka messages."""
