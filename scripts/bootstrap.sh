# Sourced by ./dev: installs what Sluice's commands need, idempotently, and fast when warm.
# - uv (pinned) in .cache/tools, then the locked virtualenv in .venv (uv sync --frozen);
# - PostgreSQL server binaries from apt when none are found (tests start their own server);
# - for a real Kubernetes node (ensure_node): its Debian packages and binaries, where one can run.

UV_VERSION="0.13.9"

log() { printf '\033[36m[bootstrap]\033[0m %s\n' "$*" >&2; }

ensure_uv() {
  if [ -x .cache/tools/bin/uv ] && [ "$(.cache/tools/bin/uv --version | cut -d' ' -f2)" = "$UV_VERSION" ]; then
    return
  fi
  log "installing uv $UV_VERSION into .cache/tools"
  python3 -m venv .cache/tools
  .cache/tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
}

ensure_postgres() {
  if .venv/bin/python -c 'from sluice.storage.postgres.embedded import find_postgres_bindir; find_postgres_bindir()' 2>/dev/null; then
    return
  fi
  log "PostgreSQL server binaries not found: installing them with apt-get"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
}

ensure_chromium() {
  # Debian's headless Chromium, driven by the console's browser tests (tests/console) over CDP.
  command -v chromium >/dev/null 2>&1 && return
  log "Chromium not found: installing Debian's chromium with apt-get (for tests/console)"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
}

ensure_control_plane() {
  # etcd, kube-apiserver, kube-controller-manager, kubectl and helm, built from Go modules and
  # cached under .cache/control-plane (about 15 minutes cold on 2 cores, instant when built).
  log "control plane binaries: $(bash scripts/control-plane/build.sh | tail -n 1)"
}

ensure_keda() {
  # KEDA's operator and metrics adapter (and its CRDs), built from its Go module and cached under
  # .cache/keda (several minutes cold on 2 cores, instant when built); the `keda` tests run them.
  log "KEDA binaries: $(bash scripts/keda/build.sh | tail -n 1)"
}

# Argo CD's application controller and repo server (and its CRDs), built from its Go module and cached
# under .cache/argocd (about 6 minutes cold on 2 cores, instant when built); the `argocd` tests run them
# with Debian's redis-server (Argo CD's cache) and git (the repository they sync from, served by git daemon).
ARGOCD_DEBIAN_PACKAGES="redis-server git"

ensure_argocd() {
  local missing=() package
  for package in $ARGOCD_DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -ne 0 ]; then
    log "installing Argo CD's Debian packages with apt-get: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  log "Argo CD binaries: $(bash scripts/argocd/build.sh | tail -n 1)"
}

ensure_prometheus_tools() {
  # promtool (rule checks and rule unit tests of deploy/prometheus/), built from the Prometheus Go module and
  # cached under .cache/prometheus (cold: 11 min of CPU, 47 min wall on a busy 2-core machine; instant when
  # built); tests/alerts run it.
  log "promtool: $(bash scripts/prometheus/build.sh | tail -n 1)"
}

# The Debian packages a real node needs: gcc, pkg-config and libseccomp-dev to build runc (cgo, seccomp),
# iptables for kube-proxy and the kubelet (1.8, nf_tables backend), openssl for checks by hand.
NODE_DEBIAN_PACKAGES="gcc libseccomp-dev pkg-config iptables openssl"

node_supported() {
  # A node needs root (bridge, iptables, mounts), overlayfs and cgroups; elsewhere the demo and the
  # tests fall back to the process stand-in and say so.
  [ "$(id -u)" -eq 0 ] && grep -qw overlay /proc/filesystems 2>/dev/null \
    && { [ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ]; }
}

ensure_node_packages() {
  local missing=() package
  for package in $NODE_DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing the node's Debian packages with apt-get: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_node() {
  # runc, containerd, the CNI plugins and pause, built from Go modules and cached under .cache/node
  # (a few minutes cold, instant when built); kubelet, kube-scheduler and kube-proxy come with the
  # control plane.
  if ! node_supported; then
    log "no real node on this machine (needs root, overlayfs and cgroups): the process stand-in runs pods"
    return
  fi
  ensure_node_packages
  log "node binaries: $(bash scripts/node/build.sh | tail -n 1)"
}

bootstrap() {
  ensure_uv
  .cache/tools/bin/uv sync --frozen --all-extras --quiet
  ensure_postgres
  ensure_chromium
}
