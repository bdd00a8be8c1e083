#!/usr/bin/env bash
# The Sluice image, built from the repository's Dockerfile without a Docker daemon: Debian's buildah
# (chroot isolation) FROM the local Debian base of scripts/image/base.sh, then written as an OCI
# archive that `ctr -n k8s.io images import` loads into a node's containerd.
# Cached by the hash of what goes into it (Dockerfile, .dockerignore, pyproject.toml, uv.lock,
# README.md, runtime/ and operator/ without caches, these scripts, the base image): a warm call
# only hashes files. Only the newest build is kept. The last two lines printed are the archive's
# path and the image reference, e.g.
#   /work/main/.cache/image/sluice-0123456789abcdef.oci.tar
#   localhost/sluice:0123456789abcdef
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/image/common.sh
source scripts/image/common.sh

LAYER_CACHE_LIMIT_MB=4000

# The build context as the Dockerfile copies it; caches are excluded (.dockerignore does the same).
context_hash() {
  local base="$1"
  {
    sha256sum Dockerfile .dockerignore pyproject.toml uv.lock README.md \
      scripts/image/build.sh scripts/image/common.sh scripts/image/name_archive.py
    find runtime operator -type f \
      -not -path '*/__pycache__/*' -not -path '*/.mypy_cache/*' -not -path '*/.pytest_cache/*' \
      -not -path '*/.ruff_cache/*' -not -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    echo "$base"
  } | short_hash
}

build_image() {
  local base="$1" reference="$2" archive="$3"
  local build_arguments=(--isolation chroot --layers --pull=never --build-arg "PYTHON_IMAGE=$base" --tag "$reference")
  # RUN steps download from PyPI and trust the image's CA store (Dockerfile: PIP_CERT, UV_SYSTEM_CERTS).
  # Where TLS goes through a proxy whose CA only this machine trusts, the machine's bundle is bind
  # mounted over the image's for the RUN steps only: the file exists in the base, so no trace is left.
  local host_bundle=/etc/ssl/certs/ca-certificates.crt
  if [ -f "$host_bundle" ]; then
    build_arguments+=(--volume "$host_bundle:$host_bundle:ro")
  fi
  image_log "building $reference FROM $base"
  local started=$SECONDS
  image_buildah build "${build_arguments[@]}" --file Dockerfile . >"$IMAGE_CACHE/build.log" 2>&1 \
    || { tail -n 30 "$IMAGE_CACHE/build.log" >&2; return 1; }
  # oci-archive:FILE:NAME names the image in index.json (org.opencontainers.image.ref.name);
  # name_archive.py adds io.containerd.image.name, the annotation containerd reads first.
  image_log "buildah build: $((SECONDS - started)) s; writing the OCI archive"
  rm -f "$archive.partial"
  image_buildah push --quiet "$reference" "oci-archive:$archive.partial:$reference" >/dev/null
  python3 scripts/image/name_archive.py "$archive.partial" "$reference"
  mv "$archive.partial" "$archive"
}

# Only the newest build is kept: older archives and tags go (an image a container still uses, say a
# running test's, stays until the next build). The layer cache (--layers: untagged images of each
# step, so a change of sources only reruns the steps after COPY runtime) is pruned past a size.
remove_older_builds() {
  local reference="$1" archive="$2" old
  for old in "$IMAGE_CACHE"/sluice-*.oci.tar; do
    [ "$old" = "$archive" ] || rm -f "$old"
  done
  for old in $(image_buildah images --noheading --format '{{.Name}}:{{.Tag}}'); do
    if [[ "$old" == "$IMAGE_NAME:"* && "$old" != "$reference" ]]; then
      image_buildah rmi "$old" >/dev/null 2>&1 || true
    fi
  done
  if [ "$(du -sm "$IMAGE_CACHE/storage" | cut -f1)" -gt "$LAYER_CACHE_LIMIT_MB" ]; then
    image_buildah rmi --prune >/dev/null 2>&1 || true
  fi
}

main() {
  # One build at a time (./dev image, the node's set-up and the tests may ask together).
  mkdir -p "$IMAGE_CACHE"
  exec 9>"$IMAGE_CACHE/build.lock"
  flock 9

  local base image_hash reference archive
  base="$(bash scripts/image/base.sh)"
  image_hash="$(context_hash "$base")"
  reference="$IMAGE_NAME:$image_hash"
  archive="$IMAGE_CACHE/sluice-$image_hash.oci.tar"
  if [ ! -f "$archive" ]; then
    local started=$SECONDS
    build_image "$base" "$reference" "$archive"
    remove_older_builds "$reference" "$archive"
    image_log "built $reference in $((SECONDS - started)) s: $(du -m "$archive" | cut -f1) MB archive"
  fi
  echo "$archive"
  echo "$reference"
}

# On one line, so that bash has read all of it before running: the file may change meanwhile.
main "$@"; exit
