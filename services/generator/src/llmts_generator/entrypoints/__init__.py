"""Entry points: HTTP routes and Kafka subscribers."""
