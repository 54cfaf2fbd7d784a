#!/usr/bin/env bash
# Pin the prod overlay's images to digests: `make k8s-pin REGISTRY=registry.example.org/team TAG=1.4.0`.
#
# Run by the release process after pushing the six images: each `$REGISTRY/llmts/<svc>:$TAG` is resolved to its
# digest in the registry (crane, installed from the Go module proxy into ~/.cache/llmts/bin) and
# deploy/k8s/overlays/prod/images/kustomization.yaml is rewritten to name `$REGISTRY/llmts/<svc>@sha256:…` — a tag
# can be moved to other content, a digest cannot. Commit the result with the release. It fails, and writes
# nothing, if any image is missing. CRANE_INSECURE=1 allows a plain-HTTP registry (a local one in tests).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${REGISTRY:?set REGISTRY, e.g. REGISTRY=registry.example.org/team}"
: "${TAG:?set TAG, the version tag the release pushed}"
CACHE=${LLMTS_CACHE_DIR:-$HOME/.cache/llmts}
BIN=$CACHE/bin
CRANE_VERSION=v0.22.1
OUT=${K8S_PIN_OUT:-deploy/k8s/overlays/prod/images/kustomization.yaml}
SERVICES="gateway auth catalog templates generator exporter"

if [ ! -x "$BIN/crane" ] || [ ! -f "$BIN/.crane-$CRANE_VERSION" ]; then
  echo "k8s-pin: installing crane $CRANE_VERSION (go install)"
  mkdir -p "$BIN"
  GOBIN=$BIN GOFLAGS=-mod=mod go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
  touch "$BIN/.crane-$CRANE_VERSION"
fi
flags=()
[ "${CRANE_INSECURE:-0}" = 1 ] && flags+=(--insecure)

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
cat > "$tmp" <<HEAD
# Written by \`make k8s-pin REGISTRY=$REGISTRY TAG=$TAG\` (scripts/k8s_pin.sh): the digest each tag had in the
# registry at release time. Do not edit by hand; run the target again for the next release.
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
images:
HEAD
for svc in $SERVICES; do
  ref="$REGISTRY/llmts/$svc:$TAG"
  if ! digest=$("$BIN/crane" digest "${flags[@]}" "$ref"); then
    echo "k8s-pin: cannot resolve $ref" >&2
    exit 1
  fi
  case "$digest" in
    sha256:*) ;;
    *) echo "k8s-pin: unexpected digest for $ref: $digest" >&2; exit 1 ;;
  esac
  printf '  - name: llmts/%s\n    newName: %s/llmts/%s\n    digest: %s\n' "$svc" "$REGISTRY" "$svc" "$digest" >> "$tmp"
  echo "k8s-pin: $ref -> $digest"
done
cp "$tmp" "$OUT"
echo "k8s-pin: wrote $OUT"
