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

fail() {
    echo "keda build: ERROR: $*" >&2
    exit 1
}

# shellcheck source=versions.env
source "${script_directory}/versions.env"
: "${KEDA_VERSION:?KEDA_VERSION missing from versions.env}"

cache_root="${SLUICE_CACHE_DIR:-${repository_root}/.cache}"
case "${cache_root}" in
    /*) ;;
    *) cache_root="${PWD}/${cache_root}" ;;
esac
keda_cache="${cache_root}/keda"
key_directory="${keda_cache}/${KEDA_VERSION}"
bin_directory="${key_directory}/bin"
crd_directory="${key_directory}/crds"
binary_names=(keda keda-adapter)

everything_present() {
    local name
    for name in "${binary_names[@]}"; do
        [[ -x "${bin_directory}/${name}" ]] || return 1
    done
    [[ -f "${crd_directory}/keda.sh_scaledobjects.yaml" ]] || return 1
    return 0
}

# Warm path: nothing but file tests.
if everything_present; then
    echo "${bin_directory}"
    exit 0
fi

mkdir -p "${key_directory}"
[[ -f "${keda_cache}/.gitignore" ]] || printf '*\n' > "${keda_cache}/.gitignore"

# One build at a time per version; a second caller waits, then takes the warm path.
exec 9> "${key_directory}/build.lock"
if command -v flock > /dev/null 2>&1 && ! flock --nonblock 9; then
    echo "keda build: another build holds ${key_directory}/build.lock; waiting for it" >&2
    flock 9
fi
if everything_present; then
    echo "${bin_directory}"
    exit 0
fi

go_command="$(command -v go || true)"
if [[ -z "${go_command}" && -x /usr/local/go/bin/go ]]; then
    go_command=/usr/local/go/bin/go
fi
[[ -n "${go_command}" ]] || fail "no Go toolchain found (looked on PATH and at /usr/local/go/bin/go)"

export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"

echo "keda build: cold build of KEDA ${KEDA_VERSION} into ${bin_directory}" >&2
echo "keda build: using $("${go_command}" version)" >&2
build_started_at=${SECONDS}

module_json="$(GOFLAGS= "${go_command}" mod download -json "github.com/kedacore/keda/v2@${KEDA_VERSION}")" \
    || fail "could not download github.com/kedacore/keda/v2@${KEDA_VERSION}: ${module_json:-no output}"
module_directory="$(printf '%s\n' "${module_json}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[[ -d "${module_directory}" ]] || fail "no module directory in: ${module_json}"

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
