#!/usr/bin/env bash
# Local infrastructure without Docker: a single-node Apache Kafka 4.x (KRaft) and a MongoDB-wire server
# (mongo-java-server with its H2 file backend), both plain JVM processes on 127.0.0.1.
#
#   scripts/infra.sh up                      fetch/build if needed, start both, wait until they answer; then the
#                                            local model (scripts/local_model.sh; LOCAL_MODEL=0 skips it)
#   scripts/infra.sh down                    stop both and the local model (SIGTERM, SIGKILL after $STOP_TIMEOUT s)
#   scripts/infra.sh status                  show state (exit 1 if a component is not up)
#   scripts/infra.sh start|stop|restart C    one component, C = kafka | mongo (data is kept)
#   scripts/infra.sh kill C                  kill -9 (chaos tests); `start C` brings it back with its data
#   scripts/infra.sh logs [C] [N]            last N (50) lines of the log(s)
#   scripts/infra.sh fetch                   only fetch jars / compile the launcher into the cache
#   scripts/infra.sh env                     print the connection settings
#   scripts/infra.sh wipe                    stop both and delete their data (asks nothing; for CI/dev resets)
#
# Settings (environment):
#   KAFKA_PORT (9092)  KAFKA_CONTROLLER_PORT (9093)  MONGO_PORT (27017)
#   LLMTS_VAR_DIR (<repo>/var): log/{kafka,mongo}.log  data/kafka/  data/mongo/llmts.mv.db  run/*.pid
#   LLMTS_CACHE_DIR (~/.cache/llmts): kafka-<v>/lib, mongo-java-server-<v>/{lib,classes}  (outside the clone)
#   KAFKA_VERSION (4.1.1)  MONGO_JAVA_SERVER_VERSION (1.47.0)  JAVA (java)  PYTHON (<repo>/.venv/bin/python)
#   KAFKA_HEAP_OPTS (-Xms256m -Xmx512m)  MONGO_HEAP_OPTS (-Xms512m -Xmx512m)  KAFKA_JVM_OPTS / MONGO_JVM_OPTS (extra)  MONGO_GC_OPTS (-XX:+UseSerialGC)
#   MONGO_WORKER_THREADS (16)
#   READY_TIMEOUT (120 s per component)  STOP_TIMEOUT (20 s)
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR_DIR="${LLMTS_VAR_DIR:-$REPO_DIR/var}"
CACHE_DIR="${LLMTS_CACHE_DIR:-${HOME:-/root}/.cache/llmts}"
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
MONGO_JAVA_SERVER_VERSION="${MONGO_JAVA_SERVER_VERSION:-1.47.0}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
MONGO_PORT="${MONGO_PORT:-27017}"
JAVA="${JAVA:-java}"
PYTHON="${PYTHON:-$REPO_DIR/.venv/bin/python}"
READY_TIMEOUT="${READY_TIMEOUT:-120}"
STOP_TIMEOUT="${STOP_TIMEOUT:-20}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
# a fixed heap: from -Xms64m the serial collector kept the heap at ~70 MB under load (a young collection every
# ~0.1 s and a full one of 40-130 ms every few seconds — the p99 of every round trip, issue 14 bench-fairness)
MONGO_HEAP_OPTS="${MONGO_HEAP_OPTS:--Xms512m -Xmx512m}"
# the JIT's full tiers (C1 then C2): C1 alone (-XX:TieredStopAtLevel=1) starts a few hundred ms sooner but kept the
# server at twice the CPU per command under load (bench-fairness: 61% of a core at 210 calls/s vs 31% at 288 once
# C2 had compiled the hot paths, and a p99 round trip of 200 ms vs 70 ms — issue 14)
MONGO_GC_OPTS="${MONGO_GC_OPTS:--XX:+UseSerialGC}"
# netty worker threads of the Mongo-wire server (netty's default: 2 × cores = 4 here). A worker runs each command of
# its connections to the end, the group commit's wait included, so with 4 a client's command queued behind the
# commits of whichever other connections shared its worker (bench-fairness, shared runs: p99 round trip 113-274 ms
# with 4, 49-66 ms with 16)
MONGO_WORKER_THREADS="${MONGO_WORKER_THREADS:-16}"
# fixed KRaft cluster id (22-char base64 UUID); only used when data/kafka is formatted the first time
KAFKA_CLUSTER_ID="${KAFKA_CLUSTER_ID:-bGxtdHMtbG9jYWwta2Fma2E}"
MVN_DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

KAFKA_SRC="$REPO_DIR/.ci/kafka"
MONGO_SRC="$REPO_DIR/.ci/mongo"
KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"
MONGO_HOME="$CACHE_DIR/mongo-java-server-$MONGO_JAVA_SERVER_VERSION"
LOG_DIR="$VAR_DIR/log"
RUN_DIR="$VAR_DIR/run"
KAFKA_DATA="$VAR_DIR/data/kafka"
MONGO_DATA="$VAR_DIR/data/mongo"
MONGO_FILE="$MONGO_DATA/llmts.mv.db"

# ---------------------------------------------------------------------------------------------------------- helpers
say() { printf 'infra: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

port_of() { case "$1" in kafka) echo "$KAFKA_PORT" ;; mongo) echo "$MONGO_PORT" ;; esac; }
pidfile() { echo "$RUN_DIR/$1.pid"; }
logfile() { echo "$LOG_DIR/$1.log"; }

check_component() {
  case "${1:-}" in kafka | mongo) ;; *) die "component must be 'kafka' or 'mongo' (got '${1:-}')" ;; esac
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid of our running process for component $1 (empty if none). The JVM carries -Dllmts.component=<name>,
# so a recycled pid of an unrelated process is never mistaken for ours.
running_pid() {
  local f pid
  f="$(pidfile "$1")"
  [[ -f $f ]] || return 0
  pid="$(cat "$f" 2>/dev/null || true)"
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-Dllmts.component=$1 "; then
    echo "$pid"
  fi
}

# the pid file's process is alive (not a zombie), whatever it runs: right after `launch` it may still be the
# subshell that has not exec'd the component yet (its cmdline is bash's), so startup checks this, not running_pid
launched_alive() { # component
  local f pid state
  f="$(pidfile "$1")"
  [[ -f $f ]] || return 1
  pid="$(cat "$f" 2>/dev/null || true)"
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state="$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)"
  [[ -n $state && $state != Z && $state != X ]]
}

log_tail() {
  local f
  f="$(logfile "$1")"
  say "---- last ${2:-40} lines of $f ----"
  tail -n "${2:-40}" "$f" >&2 2>/dev/null || true
  say "---- end of $f ----"
}

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

# ---------------------------------------------------------------------------------------------------------- fetch
mvn_copy_deps() { # pom outdir [extra -D...]
  local pom="$1" out="$2" tmp
  shift 2
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  tmp="$out.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! mvn -B -q -f "$pom" "$MVN_DEP_PLUGIN:copy-dependencies" -DincludeScope=runtime \
    -DoutputDirectory="$tmp" "$@" >"$tmp.mvn.log" 2>&1; then
    cat "$tmp.mvn.log" >&2
    rm -rf "$tmp" "$tmp.mvn.log"
    die "maven could not fetch the jars for $pom"
  fi
  rm -rf "$out" "$tmp.mvn.log"
  mv "$tmp" "$out"
}

ensure_kafka() {
  local stamp t0
  stamp="$(stamp_of "$KAFKA_SRC/pom.xml")"
  [[ -f $KAFKA_HOME/.complete && $(cat "$KAFKA_HOME/.complete") == "$stamp" ]] && return 0
  t0="$(now)"
  say "kafka: fetching Apache Kafka $KAFKA_VERSION jars into $KAFKA_HOME/lib"
  mkdir -p "$KAFKA_HOME"
  rm -f "$KAFKA_HOME/.complete"
  mvn_copy_deps "$KAFKA_SRC/pom.xml" "$KAFKA_HOME/lib" -Dkafka.version="$KAFKA_VERSION"
  echo "$stamp" >"$KAFKA_HOME/.complete"
  say "kafka: fetched $(find "$KAFKA_HOME/lib" -name '*.jar' | wc -l) jars in $(since "$t0")"
}

ensure_mongo() {
  local stamp t0
  stamp="$(stamp_of "$MONGO_SRC/pom.xml" "$MONGO_SRC/MongoMain.java")"
  [[ -f $MONGO_HOME/.complete && $(cat "$MONGO_HOME/.complete") == "$stamp" ]] && return 0
  t0="$(now)"
  say "mongo: fetching mongo-java-server $MONGO_JAVA_SERVER_VERSION jars into $MONGO_HOME/lib"
  mkdir -p "$MONGO_HOME"
  rm -f "$MONGO_HOME/.complete"
  mvn_copy_deps "$MONGO_SRC/pom.xml" "$MONGO_HOME/lib" -Dmongo-java-server.version="$MONGO_JAVA_SERVER_VERSION"
  command -v javac >/dev/null || die "javac not found (a JDK 17+ is needed)"
  rm -rf "$MONGO_HOME/classes"
  mkdir -p "$MONGO_HOME/classes"
  javac -nowarn --release 17 -cp "$MONGO_HOME/lib/*" -d "$MONGO_HOME/classes" "$MONGO_SRC/MongoMain.java"
  echo "$stamp" >"$MONGO_HOME/.complete"
  say "mongo: fetched and compiled in $(since "$t0")"
}

# ---------------------------------------------------------------------------------------------------------- start
launch() { # component, then the command; detached (own session), output to the component's log
  local c="$1" log
  shift
  log="$(logfile "$c")"
  [[ -f $log ]] && mv -f "$log" "$log.1"
  (cd "$VAR_DIR" && exec setsid nohup "$@" >"$log" 2>&1 </dev/null) &
  echo $! >"$(pidfile "$c")"
}

start_kafka() {
  local props="$RUN_DIR/kafka-server.properties" jopts
  ensure_kafka
  sed -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@KAFKA_CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    -e "s#@KAFKA_DATA_DIR@#$KAFKA_DATA#g" "$KAFKA_SRC/server.properties.tmpl" >"$props"
  # shellcheck disable=SC2206
  jopts=($KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$KAFKA_SRC/log4j2.properties" "-Dkafka.logs.dir=$LOG_DIR" ${KAFKA_JVM_OPTS:-})
  if [[ ! -f $KAFKA_DATA/meta.properties ]]; then
    local t0
    t0="$(now)"
    mkdir -p "$KAFKA_DATA"
    if ! "$JAVA" "${jopts[@]}" -cp "$KAFKA_HOME/lib/*" kafka.tools.StorageTool format \
      -t "$KAFKA_CLUSTER_ID" -c "$props" -g >"$LOG_DIR/kafka-format.log" 2>&1; then
      cat "$LOG_DIR/kafka-format.log" >&2
      die "kafka: formatting $KAFKA_DATA failed"
    fi
    say "kafka: formatted $KAFKA_DATA (cluster id $KAFKA_CLUSTER_ID) in $(since "$t0")"
  fi
  launch kafka "$JAVA" -Dllmts.component=kafka "${jopts[@]}" -cp "$KAFKA_HOME/lib/*" kafka.Kafka "$props"
}

start_mongo() {
  ensure_mongo
  mkdir -p "$MONGO_DATA"
  # shellcheck disable=SC2086
  launch mongo "$JAVA" -Dllmts.component=mongo $MONGO_HEAP_OPTS $MONGO_GC_OPTS -Dio.netty.eventLoopThreads="$MONGO_WORKER_THREADS" \
    -Djava.awt.headless=true -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -Dorg.slf4j.simpleLogger.showDateTime=true -Dorg.slf4j.simpleLogger.log.de.bwaldvogel.mongo.MongoServer=info \
    ${MONGO_JVM_OPTS:-} -cp "$MONGO_HOME/classes:$MONGO_HOME/lib/*" MongoMain "$MONGO_FILE" "$MONGO_PORT" 127.0.0.1
}

kafka_ready() {
  grep -q -e 'Kafka Server started' -e 'Transitioning from RECOVERY to RUNNING' "$(logfile kafka)" 2>/dev/null &&
    port_open "$KAFKA_PORT"
}

mongo_ping() {
  "$PYTHON" - "$MONGO_PORT" <<'EOF' >/dev/null 2>&1
import sys, pymongo
c = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]), directConnection=True, serverSelectionTimeoutMS=3000)
c.admin.command("ping")
EOF
}

have_pymongo() { [[ -x $PYTHON ]] && "$PYTHON" -c 'import pymongo' >/dev/null 2>&1; }

mongo_ready() {
  port_open "$MONGO_PORT" || return 1
  if have_pymongo; then mongo_ping; fi
}

wait_ready() { # component t0
  local c="$1" t0="$2" deadline
  deadline=$((SECONDS + READY_TIMEOUT))
  while :; do
    if "${c}_ready"; then
      say "$c ready in $(since "$t0") (pid $(running_pid "$c"), 127.0.0.1:$(port_of "$c"))"
      return 0
    fi
    if ! launched_alive "$c"; then
      log_tail "$c"
      rm -f "$(pidfile "$c")"
      die "$c exited during startup"
    fi
    if ((SECONDS >= deadline)); then
      log_tail "$c"
      die "$c not ready after ${READY_TIMEOUT}s (pid $(cat "$(pidfile "$c")") still running; '$0 stop $c' to stop it)"
    fi
    sleep 0.2
  done
}

start_one() { # component -> launch it (no wait); the caller checked that it is not running
  local c="$1"
  rm -f "$(pidfile "$c")"
  if port_open "$(port_of "$c")"; then
    die "$c: port 127.0.0.1:$(port_of "$c") is already taken by another process (set ${c^^}_PORT)"
  fi
  if [[ $c == kafka ]] && port_open "$KAFKA_CONTROLLER_PORT"; then
    die "kafka: controller port 127.0.0.1:$KAFKA_CONTROLLER_PORT is already taken (set KAFKA_CONTROLLER_PORT)"
  fi
  "start_$c"
}

cmd_start() { # components...
  local c started=()
  declare -A t0
  mkdir -p "$LOG_DIR" "$RUN_DIR" "$KAFKA_DATA" "$MONGO_DATA"
  for c in "$@"; do
    t0[$c]="$(now)"
    if [[ -z $(running_pid "$c") ]]; then
      start_one "$c"
      t0[$c]="$(now)" # readiness time excludes fetching/building into the cache
      started+=("$c")
    elif "${c}_ready"; then
      say "$c already running (pid $(running_pid "$c"), 127.0.0.1:$(port_of "$c"))"
    else
      started+=("$c") # ours but not answering yet (e.g. a start still in progress): wait for it
    fi
  done
  for c in ${started[@]+"${started[@]}"}; do
    wait_ready "$c" "${t0[$c]}"
  done
}

# ---------------------------------------------------------------------------------------------------------- stop
stop_one() { # component [signal]
  local c="$1" sig="${2:-TERM}" pid t0 deadline
  pid="$(running_pid "$c")"
  if [[ -z $pid ]]; then
    rm -f "$(pidfile "$c")"
    say "$c not running"
    return 0
  fi
  t0="$(now)"
  if [[ $sig == KILL ]]; then
    kill -KILL "$pid" 2>/dev/null || true
  else
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$c did not stop within ${STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$(pidfile "$c")"
  say "$c stopped (SIG$sig, pid $pid) in $(since "$t0")"
}

# ---------------------------------------------------------------------------------------------------------- other
cmd_status() {
  local c pid rc=0 state
  for c in kafka mongo; do
    pid="$(running_pid "$c")"
    if [[ -z $pid ]]; then
      state="stopped"
      port_open "$(port_of "$c")" && state="stopped (but port $(port_of "$c") is taken by another process)"
      rc=1
    elif "${c}_ready"; then
      state="up (pid $pid)"
    else
      state="starting/not answering (pid $pid)"
      rc=1
    fi
    printf '%-6s %-40s 127.0.0.1:%-6s log=%s\n' "$c" "$state" "$(port_of "$c")" "$(logfile "$c")"
  done
  printf 'var=%s cache=%s\n' "$VAR_DIR" "$CACHE_DIR"
  return "$rc"
}

cmd_logs() {
  local comps=(kafka mongo) n=50
  case "${1:-}" in kafka | mongo) comps=("$1"); n="${2:-50}" ;; '') ;; *) n="$1" ;; esac
  for c in "${comps[@]}"; do
    echo "==> $(logfile "$c") <=="
    tail -n "$n" "$(logfile "$c")" 2>/dev/null || echo "(no log)"
  done
}

cmd_env() {
  echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT"
  echo "MONGO_URI=mongodb://127.0.0.1:$MONGO_PORT/?directConnection=true"
}

# The embedded local model (Ollama + SmolLM2-135M, scripts/local_model.sh): started by `up` unless LOCAL_MODEL=0.
# A machine that cannot build it (no Go, no root for two header packages) goes on without it, saying why.
local_model() {
  local rc=0
  bash "$REPO_DIR/scripts/local_model.sh" "$1" || rc=$?
  if [[ $rc == 3 ]]; then
    say "continuing without the local model (LOCAL_MODEL=0 silences this); OpenRouter and external Ollama still work"
  elif [[ $rc != 0 ]]; then
    say "the local model did not start (exit $rc; see var/log/ollama.log); continuing without it"
  fi
}

usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    start | stop | restart | kill) check_component "${1:-}" ;;
  esac
  case "$cmd" in
    up)
      cmd_start kafka mongo
      local_model up
      ;;
    down)
      stop_one kafka
      stop_one mongo
      local_model down
      ;;
    start) cmd_start "$1" ;;
    stop) stop_one "$1" ;;
    restart)
      stop_one "$1"
      cmd_start "$1"
      ;;
    kill) stop_one "$1" KILL ;;
    status)
      local rc=0
      cmd_status || rc=$?
      bash "$REPO_DIR/scripts/local_model.sh" status || true # informational: kafka + mongo decide the exit code
      return "$rc"
      ;;
    logs) cmd_logs "$@" ;;
    fetch)
      ensure_kafka
      ensure_mongo
      say "cache ready: $KAFKA_HOME $MONGO_HOME"
      ;;
    env) cmd_env ;;
    wipe)
      stop_one kafka
      stop_one mongo
      rm -rf "$VAR_DIR/data"
      say "deleted $VAR_DIR/data"
      ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
