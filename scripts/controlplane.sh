#!/usr/bin/env bash
# The test control plane of the end-to-end suite (docs/development.md).
#   scripts/controlplane.sh build   link etcd, kube-apiserver, kube-controller-manager and kubectl from the published
#                                   Go modules pinned in test/controlplane/go.mod into .controlplane/controlplane.
#                                   Go's build cache makes a re-run a no-op when nothing changed.
#   scripts/controlplane.sh start   build, then run a fresh control plane on loopback until Ctrl-C; prints its
#                                   admin kubeconfig (for `podvisor serve --kubeconfig ... --webhook-url ...`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

build() {
  command -v go >/dev/null || { echo "controlplane.sh: go is not installed (Go >= 1.26 is needed to build the test control plane)" >&2; exit 1; }
  mkdir -p "$root/.controlplane"
  local start=$SECONDS version
  # /version reports the release (podvisor reads it), as in the official builds, which stamp it at link time.
  version=$(cd test/controlplane && go list -m -f '{{.Version}}' k8s.io/kubernetes)
  local minor=${version#v1.}; minor=${minor%%.*}
  local pkg=k8s.io/component-base/version
  (cd test/controlplane && go build -trimpath \
    -ldflags "-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
    -o "$root/.controlplane/controlplane" .)
  echo "controlplane.sh: $root/.controlplane/controlplane ready ($((SECONDS - start)) s)" >&2
}

case "${1:-}" in
  build) build ;;
  start) build; exec node --import tsx scripts/control-plane.ts ;;
  *) echo "usage: scripts/controlplane.sh build|start" >&2; exit 2 ;;
esac
