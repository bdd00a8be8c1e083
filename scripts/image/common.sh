# Sourced by scripts/image/*.sh: where the image build keeps its state, and buildah pointed at it.
# Everything lives under .cache/image/ (git-ignored): buildah's own storage, the Debian tree of the
# base image, the OCI archives and one stamp per built hash, so a warm build reads a few files only.

IMAGE_CACHE="${SLUICE_IMAGE_CACHE:-$PWD/.cache/image}"
IMAGE_NAME="localhost/sluice"
BASE_NAME="localhost/sluice-base"
DEBIAN_SUITE="bookworm"
BASE_PACKAGES="python3,python3-venv,ca-certificates"

image_log() { printf '\033[36m[image]\033[0m %s\n' "$*" >&2; }

# buildah with its storage inside the project's cache, not the machine's /var/lib/containers.
# --isolation chroot for RUN steps: Debian's default runtime (crun) fails in this sandbox.
image_buildah() {
  buildah --root "$IMAGE_CACHE/storage" --runroot "$IMAGE_CACHE/run" --storage-driver overlay "$@"
}

# The Debian mirror apt uses on this machine (deb822 .sources first, then one-line sources.list),
# unless SLUICE_DEBIAN_MIRROR names one.
debian_mirror() {
  if [ -n "${SLUICE_DEBIAN_MIRROR:-}" ]; then
    echo "$SLUICE_DEBIAN_MIRROR"
    return
  fi
  local mirror
  mirror="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '/^URIs:/ { uri = $2 } /^Suites:/ && / '"$DEBIAN_SUITE"'( |$)/ && uri !~ /security/ { print uri; exit }')"
  if [ -z "$mirror" ]; then
    mirror="$(cat /etc/apt/sources.list 2>/dev/null \
      | awk '$1 == "deb" && $3 == "'"$DEBIAN_SUITE"'" { print $2; exit }')"
  fi
  echo "${mirror:-http://deb.debian.org/debian}"
}

# sha256 of standard input, first 16 hex digits (enough to name an image).
short_hash() { sha256sum | cut -c1-16; }
