#!/usr/bin/env bash
# Builds nats-server (NATS with JetStream) from the Go module only, for `./dev bench peers`:
# `go install github.com/nats-io/nats-server/v2@<version>`, no release archive. The version is pinned in
# versions.env.
#
# The binary lands in ${SLUICE_CACHE_DIR:-<repo>/.cache}/peers/nats-server/<version>/bin. When it already
# exists the script only prints the bin directory (warm path: file tests only). The bin directory is always
# the last line of standard output; progress goes to standard error.
set -euo pipefail

script_directory="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repository_root="$(cd "${script_directory}/../.." && pwd)"
# shellcheck disable=SC2034 # used by cached-go-build.sh
build_label="nats-server build"
# shellcheck source=../lib/cached-go-build.sh
source "${script_directory}/../lib/cached-go-build.sh"

# shellcheck source=versions.env
source "${script_directory}/versions.env"
: "${NATS_SERVER_MODULE_VERSION:?NATS_SERVER_MODULE_VERSION missing from versions.env}"

nats_cache="$(tool_cache_directory "${repository_root}" peers)/nats-server"
key_directory="${nats_cache}/${NATS_SERVER_MODULE_VERSION}"
bin_directory="${key_directory}/bin"

is_built() {
    all_executable "${bin_directory}" nats-server
}
mkdir -p "${nats_cache}"
take_warm_path_or_lock "${nats_cache}" "${key_directory}" "${bin_directory}"

find_go_command
export CGO_ENABLED=0
export GOFLAGS=""

echo "nats-server build: cold build of nats-server ${NATS_SERVER_MODULE_VERSION} into ${bin_directory}" >&2
echo "nats-server build: using $("${go_command}" version)" >&2
build_started_at=${SECONDS}

staging_output="${key_directory}/bin.partial"
rm -rf "${staging_output}"
mkdir -p "${staging_output}"

run_step "go install github.com/nats-io/nats-server/v2@${NATS_SERVER_MODULE_VERSION}" \
    env GOBIN="${staging_output}" nice -n 10 "${go_command}" install -trimpath -ldflags "-s -w" \
    "github.com/nats-io/nats-server/v2@${NATS_SERVER_MODULE_VERSION}"

[[ -x "${staging_output}/nats-server" ]] || fail "the build finished but ${staging_output}/nats-server is missing"
"${staging_output}/nats-server" --version >&2 || fail "the built nats-server does not run"

# Publish: the binary appears in bin/ only once it was built and answered --version.
mkdir -p "${bin_directory}"
mv -f "${staging_output}/nats-server" "${bin_directory}/nats-server"
rm -rf "${staging_output}"

echo "nats-server build: finished in $((SECONDS - build_started_at)) s" >&2
echo "${bin_directory}"
