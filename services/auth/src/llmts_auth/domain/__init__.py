"""Pure domain of the auth service: users, password policy, token rules, login throttling. Stdlib only."""
