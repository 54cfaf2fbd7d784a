#!/usr/bin/env bash
# The env file `make run` / `make run-demo` hand to honcho: .env (if any) plus INTERNAL_TOKEN — the one set in .env,
# else var/internal_token, generated once (mode 0600) and kept, so the token is stable across restarts.
# Prints the env file's path only; the token itself is never printed.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var/run
token_file=var/internal_token
token=""
if [ -f .env ]; then
  token=$(sed -n 's/^INTERNAL_TOKEN=//p' .env | tail -n 1 | tr -d "\"'[:space:]")
fi
if [ -z "$token" ]; then
  if [ ! -s "$token_file" ]; then
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > "$token_file")
  fi
  token=$(tr -d '[:space:]' < "$token_file")
fi
out=var/run/run.env
(
  umask 077
  {
    if [ -f .env ]; then grep -v '^INTERNAL_TOKEN=' .env || true; fi
    echo "INTERNAL_TOKEN=$token"
  } > "$out"
)
echo "$out"
