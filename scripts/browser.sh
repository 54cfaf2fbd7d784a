#!/usr/bin/env bash
# The browser of the `browser` test tier: Debian's Chromium, driven headless by Playwright for Python
# (tests/browser/). Nothing here downloads a browser build: Chromium comes from Debian's packages (apt-get).
#
#   scripts/browser.sh ensure    install Chromium and a font with Cyrillic with apt-get if missing; print its path
#   scripts/browser.sh path      print the Chromium executable (exit 1 if none)
#   scripts/browser.sh status    the Chromium found and its version (exit 1 if none)
#
# Settings (environment): CHROMIUM_PATH (a Chromium executable to use instead of looking one up),
# LLMTS_VAR_DIR (<repo>/var): log/browser-apt.log
#
# Where Chromium is missing and cannot be installed (not root, or no apt-get), `ensure` says why and exits 3, so
# scripts/test.sh reports the tier as NOT RUN with that reason.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR_DIR="${LLMTS_VAR_DIR:-$REPO_DIR/var}"
LOG="$VAR_DIR/log/browser-apt.log"
PACKAGES=(chromium fonts-dejavu-core)
CANNOT=3 # exit code: this machine cannot have the browser (callers report the tier as not run)

say() { printf 'browser: %s\n' "$*" >&2; }

# The Chromium executable, or nothing.
find_chromium() {
  local c
  for c in "${CHROMIUM_PATH:-}" "$(command -v chromium 2>/dev/null || true)" /usr/bin/chromium /usr/lib/chromium/chromium; do
    if [[ -n $c && -x $c ]]; then
      printf '%s\n' "$c"
      return 0
    fi
  done
  return 1
}

version() { "$1" --headless --version 2>/dev/null | grep -m1 -i chromium || true; }

install_chromium() {
  if [[ $(id -u) != 0 ]]; then
    say "Chromium is missing and installing it needs root (run: sudo apt-get install ${PACKAGES[*]})"
    return $CANNOT
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "Chromium is missing and this machine has no apt-get (install Debian's chromium, or set CHROMIUM_PATH)"
    return $CANNOT
  fi
  mkdir -p "$(dirname "$LOG")" 2>/dev/null || true
  say "installing ${PACKAGES[*]} with apt-get (log: $LOG)"
  # the package lists may be stale or absent on a fresh machine: update once when the first try fails
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >"$LOG" 2>&1; then
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}"; } >>"$LOG" 2>&1; then
      tail -n 20 "$LOG" >&2
      say "apt-get could not install ${PACKAGES[*]} (see $LOG)"
      return $CANNOT
    fi
  fi
}

ensure() {
  local path
  mkdir -p "$(dirname "$LOG")" 2>/dev/null || true
  if ! path="$(find_chromium)"; then
    install_chromium || return $?
    path="$(find_chromium)" || { say "apt-get finished but no Chromium executable was found"; return $CANNOT; }
  fi
  # Cyrillic must render (the console serves Russian users): a font that covers it, else install DejaVu
  if command -v fc-list >/dev/null 2>&1 && [[ -z "$(fc-list ':lang=ru' family 2>/dev/null)" ]]; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >>"$LOG" 2>&1 \
        || say "no font with Cyrillic and apt-get could not install fonts-dejavu-core (see $LOG)"
    else
      say "no font with Cyrillic: Cyrillic text will show as boxes (install fonts-dejavu-core)"
    fi
  fi
  if [[ -z "$(version "$path")" ]]; then
    say "$path does not run (\`$path --headless --version\` printed no version)"
    return $CANNOT
  fi
  say "$(version "$path") at $path"
  printf '%s\n' "$path"
}

case "${1:-}" in
  ensure) ensure ;;
  path) find_chromium ;;
  status)
    path="$(find_chromium)" || { say "no Chromium (scripts/browser.sh ensure installs Debian's)"; exit 1; }
    say "$(version "$path") at $path"
    ;;
  *)
    echo "usage: $0 ensure|path|status" >&2
    exit 2
    ;;
esac
