#!/usr/bin/env bash
# The base image, made locally from Debian packages because nothing can be pulled: debootstrap a
# minimal bookworm with Python 3.11 (python3, python3-venv, ca-certificates) from the mirror apt
# uses, then turn that tree into an image with `buildah from scratch` + copy + commit.
# Cached by the hash of its inputs (this script, the suite, the packages, the mirror): a built
# base is reused. Prints the image reference, e.g. localhost/sluice-base:0123456789abcdef.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/image/common.sh
source scripts/image/common.sh

mirror="$(debian_mirror)"
base_hash="$(printf '%s\n' "$(sha256sum scripts/image/base.sh)" "$DEBIAN_SUITE" "$BASE_PACKAGES" "$mirror" | short_hash)"
reference="$BASE_NAME:$base_hash"
stamp="$IMAGE_CACHE/base-$base_hash.built"

if [ -f "$stamp" ]; then
  echo "$reference"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || { image_log "debootstrap and buildah's storage need root"; exit 1; }
if ! command -v debootstrap >/dev/null || ! command -v buildah >/dev/null; then
  image_log "installing debootstrap and buildah with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap buildah >/dev/null
fi

started=$SECONDS
tree="$IMAGE_CACHE/base-$base_hash.tree"
rm -rf "$tree"
mkdir -p "$IMAGE_CACHE"
image_log "debootstrap $DEBIAN_SUITE ($BASE_PACKAGES) from $mirror"
debootstrap --variant=minbase --include="$BASE_PACKAGES" "$DEBIAN_SUITE" "$tree" "$mirror" \
  >"$IMAGE_CACHE/debootstrap.log" 2>&1 || { tail -n 20 "$IMAGE_CACHE/debootstrap.log" >&2; exit 1; }
# Downloaded packages and index files are not part of an image.
rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/* "$tree"/var/log/*.log "$tree"/tmp/*

container="$(image_buildah from scratch)"
trap 'image_buildah rm "$container" >/dev/null 2>&1 || true' EXIT
mountpoint="$(image_buildah mount "$container")"
# tar keeps owners, modes and special files exactly as debootstrap made them.
tar -C "$tree" -cf - . | tar -C "$mountpoint" -xpf -
image_buildah umount "$container" >/dev/null
image_buildah config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 \
  --cmd /bin/bash \
  --label org.opencontainers.image.description="Debian $DEBIAN_SUITE minbase with $BASE_PACKAGES, by scripts/image/base.sh" \
  "$container"
image_buildah commit --quiet "$container" "$reference" >/dev/null
rm -rf "$tree"
# An older base (other inputs) is not used any more.
for old_stamp in "$IMAGE_CACHE"/base-*.built; do
  [ -f "$old_stamp" ] || continue
  old_hash="${old_stamp##*/base-}"
  image_buildah rmi "$BASE_NAME:${old_hash%.built}" >/dev/null 2>&1 || true
  rm -f "$old_stamp"
done
touch "$stamp"
image_log "base image $reference built in $((SECONDS - started)) s"
echo "$reference"
