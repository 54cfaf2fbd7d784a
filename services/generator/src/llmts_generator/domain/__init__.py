"""Pure domain of the generator: job state machine, slot scheduling (exactly N), repair prompts, backoff,
circuit breaker, progress maths and the fair limiter. Imports only the stdlib and pydantic."""
