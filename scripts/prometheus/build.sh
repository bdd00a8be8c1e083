#!/usr/bin/env bash
# Builds promtool (Prometheus's rule checker and rule unit-test runner) from the Go module only:
# `go install github.com/prometheus/prometheus/cmd/promtool@<version>`, no release archive or image.
# The version is pinned in versions.env; nothing else of Prometheus is built.
#
# The binary lands in ${SLUICE_CACHE_DIR:-<repo>/.cache}/prometheus/<version>/bin. When it already exists
# the script only prints the bin directory (warm path: file tests only). The bin directory is always the
# last line of standard output; progress goes to standard error.
set -euo pipefail

script_directory="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repository_root="$(cd "${script_directory}/../.." && pwd)"
# shellcheck disable=SC2034 # used by cached-go-build.sh
build_label="prometheus build"
# shellcheck source=../lib/cached-go-build.sh
source "${script_directory}/../lib/cached-go-build.sh"

# shellcheck source=versions.env
source "${script_directory}/versions.env"
: "${PROMETHEUS_MODULE_VERSION:?PROMETHEUS_MODULE_VERSION missing from versions.env}"
: "${PROMETHEUS_RELEASE:?PROMETHEUS_RELEASE missing from versions.env}"

prometheus_cache="$(tool_cache_directory "${repository_root}" prometheus)"
key_directory="${prometheus_cache}/${PROMETHEUS_MODULE_VERSION}"
bin_directory="${key_directory}/bin"
binary_names=(promtool)

is_built() {
    all_executable "${bin_directory}" "${binary_names[@]}"
}
take_warm_path_or_lock "${prometheus_cache}" "${key_directory}" "${bin_directory}"

find_go_command
export CGO_ENABLED=0
export GOFLAGS=""

echo "prometheus build: cold build of promtool ${PROMETHEUS_RELEASE} (module ${PROMETHEUS_MODULE_VERSION}) into ${bin_directory}" >&2
echo "prometheus build: using $("${go_command}" version)" >&2
build_started_at=${SECONDS}

staging_output="${key_directory}/bin.partial"
rm -rf "${staging_output}"
mkdir -p "${staging_output}"

version_package="github.com/prometheus/common/version"
version_ldflags="-X ${version_package}.Version=${PROMETHEUS_RELEASE}"
version_ldflags+=" -X ${version_package}.Revision=module-proxy -X ${version_package}.Branch=${PROMETHEUS_MODULE_VERSION}"
# remove_all_sd (Prometheus's own build tag) leaves out the cloud service discoveries (AWS, Azure, GCE, ...):
# checking and unit-testing rules needs none of them, and they are most of a cold build's compile time.
run_step "go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_MODULE_VERSION}" \
    env GOBIN="${staging_output}" nice -n 10 "${go_command}" install -tags remove_all_sd -trimpath \
    -ldflags "-s -w ${version_ldflags}" \
    "github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_MODULE_VERSION}"

[[ -x "${staging_output}/promtool" ]] || fail "the build finished but ${staging_output}/promtool is missing"
"${staging_output}/promtool" --version >&2 || fail "the built promtool does not run"

# Publish: the binary appears in bin/ only once it was built and answered --version.
mkdir -p "${bin_directory}"
mv -f "${staging_output}/promtool" "${bin_directory}/promtool"
rm -rf "${staging_output}"

echo "prometheus build: finished in $((SECONDS - build_started_at)) s" >&2
echo "${bin_directory}"
