# Sourced by ./dev: installs what Sluice's commands need, idempotently, and fast when warm.
# - uv (pinned) in .cache/tools, then the locked virtualenv in .venv (uv sync --frozen);
# - PostgreSQL server binaries from apt when none are found (tests start their own server).

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
  if .venv/bin/python -c 'from sluice.embedded_postgres import find_postgres_bindir; find_postgres_bindir()' 2>/dev/null; then
    return
  fi
  log "PostgreSQL server binaries not found: installing them with apt-get"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
}

ensure_control_plane() {
  # etcd, kube-apiserver, kube-controller-manager, kubectl and helm, built from Go modules and
  # cached under .cache/control-plane (about 15 minutes cold on 2 cores, instant when built).
  log "control plane binaries: $(bash scripts/control-plane/build.sh | tail -n 1)"
}

bootstrap() {
  ensure_uv
  .cache/tools/bin/uv sync --frozen --all-extras --quiet
  ensure_postgres
}
