#!/usr/bin/env bash
# The env file `make run` / `make run-demo` hand to honcho: .env (if any) plus INTERNAL_TOKEN — the one set in .env,
# else var/internal_token, generated once (mode 0600) and kept, so the token is stable across restarts — and
# SIGNING_KEYS_ENCRYPTION_KEY the same way (var/signing_keys_key, a Fernet key: auth encrypts its JWT signing keys in
# Mongo with it; losing it while var/data is kept makes auth refuse to start — delete both, or neither).
# Prints the env file's path only; no secret is ever printed.
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
signing_key_file=var/signing_keys_key
signing_key=""
if [ -f .env ]; then
  signing_key=$(sed -n 's/^SIGNING_KEYS_ENCRYPTION_KEY=//p' .env | tail -n 1 | tr -d "\"'[:space:]")
fi
if [ -z "$signing_key" ]; then
  if [ ! -s "$signing_key_file" ]; then
    (umask 077 && python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())' \
      > "$signing_key_file")
  fi
  signing_key=$(tr -d '[:space:]' < "$signing_key_file")
fi
out=var/run/run.env
(
  umask 077
  {
    if [ -f .env ]; then grep -v -e '^INTERNAL_TOKEN=' -e '^SIGNING_KEYS_ENCRYPTION_KEY=' .env || true; fi
    echo "INTERNAL_TOKEN=$token"
    echo "SIGNING_KEYS_ENCRYPTION_KEY=$signing_key"
  } > "$out"
)
echo "$out"
