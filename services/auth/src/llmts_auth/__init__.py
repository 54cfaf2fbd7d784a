"""llmts auth service: Accounts, login, OAuth and tokens."""
