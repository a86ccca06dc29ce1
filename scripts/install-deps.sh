#!/usr/bin/env bash
# Installs what the test suite needs beyond Go, on a fresh Debian machine. Idempotent: a second run
# installs nothing. Go tools are pinned in tools/go.mod and built into bin/.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v tinyproxy >/dev/null || need+=(tinyproxy) # an HTTPS proxy for the HTTPS_PROXY tests
# The README's "Run the webhook locally" block, which cmd/webhook's TestREADMEWebhookLocally runs.
for tool in openssl curl jq; do command -v $tool >/dev/null || need+=($tool); done
[ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates) # cmd/mkimage copies it into the image
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The distribution registry and tinyproxy packages enable a system service on install; the tests
# start their own.
for service in docker-registry tinyproxy; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" || true
  fi
done

if [ -f tools/go.mod ]; then
  # Rebuilt whenever bin/kustomize is not the version pinned in tools/go.mod.
  kustomize_version=$(cd tools && GOTOOLCHAIN=local GOFLAGS= go list -m -f '{{.Version}}' sigs.k8s.io/kustomize/kustomize/v5)
  if [ "$(bin/kustomize version 2>/dev/null)" != "$kustomize_version" ]; then
    echo "building kustomize $kustomize_version into bin/"
    (cd tools && GOTOOLCHAIN=local GOFLAGS=-buildvcs=false go build -o ../bin/kustomize sigs.k8s.io/kustomize/kustomize/v5)
  fi
fi

# kube-apiserver, etcd and kube-controller-manager for the webhook's end-to-end tests (e2e/webhook),
# built from tools/apiserver, a module of its own (k8s.io/kubernetes stays out of digester's go.mod), in one
# go build so that the packages they share are compiled once. Rebuilt only when tools/apiserver changed
# since the last build (bin/.apiserver.sum): a cold build takes 13 minutes of CPU time, 6-8 minutes on 2 idle cores, a warm one seconds.
if [ -f tools/apiserver/go.mod ]; then
  apiserver_sum=$(cat tools/apiserver/go.mod tools/apiserver/go.sum tools/apiserver/cmd/*/main.go | sha256sum | cut -d' ' -f1)
  if [ ! -x bin/kube-apiserver ] || [ ! -x bin/etcd ] || [ ! -x bin/kube-controller-manager ] || [ "$(cat bin/.apiserver.sum 2>/dev/null)" != "$apiserver_sum" ]; then
    echo "building kube-apiserver, etcd and kube-controller-manager into bin/ (a cold build takes 6-8 minutes)"
    mkdir -p bin
    (cd tools/apiserver && GOTOOLCHAIN=local GOFLAGS=-buildvcs=false go build -trimpath -ldflags='-s -w' -o ../../bin/ ./cmd/kube-apiserver ./cmd/etcd ./cmd/kube-controller-manager)
    echo "$apiserver_sum" > bin/.apiserver.sum
  fi
fi
command -v kubectl >/dev/null || echo "warning: kubectl is not on PATH; the webhook end-to-end tests will fail and say how to get it" >&2

command -v kpt >/dev/null || echo "warning: kpt is not on PATH; the kpt end-to-end tests will fail and say how to get it" >&2
# e2e/container loads the image into a Docker Engine and runs it through kpt; it pulls nothing.
docker version >/dev/null 2>&1 || echo "warning: no Docker daemon answers \`docker version\`; the container tests (e2e/container) will fail and say how to get one" >&2
