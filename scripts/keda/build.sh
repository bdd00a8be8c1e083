#!/usr/bin/env bash
# Builds KEDA from its Go module only: the operator (keda) and the external metrics API server
# (keda-adapter), and copies the CRDs shipped in the same module version (config/crd/bases).
#
# No container images or GitHub releases: the module comes from the Go module proxy. KEDA's go.mod
# has replace directives, which `go install module@version` refuses, so the module directory is copied
# out of the (read-only) module cache into a writable folder and built there with -mod=mod.
#
# Binaries land in ${SLUICE_CACHE_DIR:-<repo>/.cache}/keda/<version>/bin and CRDs in .../crds. When
# they already exist the script only prints the bin directory (warm path: file tests only). The bin
# directory is always the last line of standard output; progress goes to standard error.
#
# One patch is applied to the copy (see below): the adapter's Prometheus endpoint binds 127.0.0.1.
set -euo pipefail

script_directory="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repository_root="$(cd "${script_directory}/../.." && pwd)"
# shellcheck disable=SC2034 # used by cached-go-build.sh
build_label="keda build"
# shellcheck source=../lib/cached-go-build.sh
source "${script_directory}/../lib/cached-go-build.sh"

# shellcheck source=versions.env
source "${script_directory}/versions.env"
: "${KEDA_VERSION:?KEDA_VERSION missing from versions.env}"

keda_cache="$(tool_cache_directory "${repository_root}" keda)"
key_directory="${keda_cache}/${KEDA_VERSION}"
bin_directory="${key_directory}/bin"
crd_directory="${key_directory}/crds"
binary_names=(keda keda-adapter)

is_built() {
    all_executable "${bin_directory}" "${binary_names[@]}" && [[ -f "${crd_directory}/keda.sh_scaledobjects.yaml" ]]
}
take_warm_path_or_lock "${keda_cache}" "${key_directory}" "${bin_directory}"

find_go_command
export CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"

echo "keda build: cold build of KEDA ${KEDA_VERSION} into ${bin_directory}" >&2
echo "keda build: using $("${go_command}" version)" >&2
build_started_at=${SECONDS}

module_directory="$(go_module_field "github.com/kedacore/keda/v2@${KEDA_VERSION}" Dir)"

source_directory="${key_directory}/source"
rm -rf "${source_directory}"
cp -r "${module_directory}" "${source_directory}"
chmod -R u+w "${source_directory}"

# One local patch: the adapter serves its Prometheus metrics on ":<--port>", every interface, with no flag to
# choose the address. Here it binds 127.0.0.1 (the project's servers listen on loopback only).
adapter_main="${source_directory}/cmd/adapter/main.go"
grep -q 'metricsBindAddress := fmt.Sprintf(":%v", metricsAPIServerPort)' "${adapter_main}" \
    || fail "cmd/adapter/main.go no longer has the metrics bind line this script patches; review the patch"
sed -i 's/metricsBindAddress := fmt.Sprintf(":%v", metricsAPIServerPort)/metricsBindAddress := fmt.Sprintf("127.0.0.1:%v", metricsAPIServerPort)/' \
    "${adapter_main}"

staging_output="${key_directory}/bin.partial"
rm -rf "${staging_output}"
mkdir -p "${staging_output}"

version_ldflags="-X github.com/kedacore/keda/v2/version.Version=${KEDA_VERSION#v}"
version_ldflags+=" -X github.com/kedacore/keda/v2/version.GitCommit=module-proxy"
(
    cd "${source_directory}"
    echo "keda build: go build ./cmd/operator ./cmd/adapter" >&2
    step_started_at=${SECONDS}
    nice -n 10 "${go_command}" build -trimpath -ldflags "-s -w ${version_ldflags}" \
        -o "${staging_output}/keda" ./cmd/operator >&2 \
        || fail "go build ./cmd/operator failed"
    nice -n 10 "${go_command}" build -trimpath -ldflags "-s -w ${version_ldflags}" \
        -o "${staging_output}/keda-adapter" ./cmd/adapter >&2 \
        || fail "go build ./cmd/adapter failed"
    echo "keda build: done in $((SECONDS - step_started_at)) s: go build" >&2
)

for name in "${binary_names[@]}"; do
    [[ -x "${staging_output}/${name}" ]] || fail "the build finished but ${staging_output}/${name} is missing"
done
"${staging_output}/keda" --help > /dev/null 2>&1 || true

# CRDs of the same module version.
rm -rf "${crd_directory}.partial"
mkdir -p "${crd_directory}.partial"
cp "${source_directory}"/config/crd/bases/*.yaml "${crd_directory}.partial/"
[[ -f "${crd_directory}.partial/keda.sh_scaledobjects.yaml" ]] \
    || fail "the module has no config/crd/bases/keda.sh_scaledobjects.yaml"
rm -rf "${crd_directory}"
mv "${crd_directory}.partial" "${crd_directory}"

# Publish: binaries appear in bin/ only once both were built.
mkdir -p "${bin_directory}"
for name in "${binary_names[@]}"; do
    mv -f "${staging_output}/${name}" "${bin_directory}/${name}"
done
rm -rf "${staging_output}" "${source_directory}"

echo "keda build: finished in $((SECONDS - build_started_at)) s" >&2
echo "${bin_directory}"
