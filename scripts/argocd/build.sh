#!/usr/bin/env bash
# Builds Argo CD from its Go module only: one binary (cmd/main.go) that becomes every component by the
# name it is called with, installed as argocd, argocd-application-controller and argocd-repo-server
# (links to the one file), and copies the CRDs shipped in the same module version (manifests/crds).
#
# No container images or GitHub releases: the module comes from the Go module proxy. Argo CD's go.mod
# has replace directives, which `go install module@version` refuses, so the module directory is copied
# out of the (read-only) module cache into a writable folder and built there with -mod=mod.
#
# Binaries land in ${SLUICE_CACHE_DIR:-<repo>/.cache}/argocd/<version>/bin and CRDs in .../crds. When
# they already exist the script only prints the bin directory (warm path: file tests only). The bin
# directory is always the last line of standard output; progress goes to standard error.
#
# One patch is applied to the copy (see below): the application controller's metrics endpoint binds 127.0.0.1.
set -euo pipefail

script_directory="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repository_root="$(cd "${script_directory}/../.." && pwd)"
# shellcheck disable=SC2034 # used by cached-go-build.sh
build_label="argocd build"
# shellcheck source=../lib/cached-go-build.sh
source "${script_directory}/../lib/cached-go-build.sh"

# shellcheck source=versions.env
source "${script_directory}/versions.env"
: "${ARGOCD_VERSION:?ARGOCD_VERSION missing from versions.env}"

argocd_cache="$(tool_cache_directory "${repository_root}" argocd)"
key_directory="${argocd_cache}/${ARGOCD_VERSION}"
bin_directory="${key_directory}/bin"
crd_directory="${key_directory}/crds"
binary_names=(argocd argocd-application-controller argocd-repo-server)

is_built() {
    all_executable "${bin_directory}" "${binary_names[@]}" && [[ -f "${crd_directory}/application-crd.yaml" ]]
}
take_warm_path_or_lock "${argocd_cache}" "${key_directory}" "${bin_directory}"

find_go_command
export CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"

echo "argocd build: cold build of Argo CD ${ARGOCD_VERSION} into ${bin_directory}" >&2
echo "argocd build: using $("${go_command}" version)" >&2
build_started_at=${SECONDS}

module_directory="$(go_module_field "github.com/argoproj/argo-cd/v3@${ARGOCD_VERSION}" Dir)"

source_directory="${key_directory}/source"
rm -rf "${source_directory}"
cp -r "${module_directory}" "${source_directory}"
chmod -R u+w "${source_directory}"

# One local patch: the application controller serves its metrics on 0.0.0.0:<--metrics-port>, with no flag to
# choose the address (the repo server has --metrics-address). Here it binds 127.0.0.1 (the project's servers
# listen on loopback only).
controller_source="${source_directory}/controller/appcontroller.go"
grep -q 'metricsAddr := fmt.Sprintf("0.0.0.0:%d", metricsPort)' "${controller_source}" \
    || fail "controller/appcontroller.go no longer has the metrics bind line this script patches; review the patch"
sed -i 's/metricsAddr := fmt.Sprintf("0.0.0.0:%d", metricsPort)/metricsAddr := fmt.Sprintf("127.0.0.1:%d", metricsPort)/' \
    "${controller_source}"

staging_output="${key_directory}/bin.partial"
rm -rf "${staging_output}"
mkdir -p "${staging_output}"

version_ldflags="-X github.com/argoproj/argo-cd/v3/common.version=${ARGOCD_VERSION#v}"
version_ldflags+=" -X github.com/argoproj/argo-cd/v3/common.gitCommit=module-proxy"
(
    cd "${source_directory}"
    echo "argocd build: go build ./cmd" >&2
    step_started_at=${SECONDS}
    nice -n 10 "${go_command}" build -trimpath -ldflags "-s -w ${version_ldflags}" \
        -o "${staging_output}/argocd" ./cmd >&2 \
        || fail "go build ./cmd failed"
    echo "argocd build: done in $((SECONDS - step_started_at)) s: go build" >&2
)
[[ -x "${staging_output}/argocd" ]] || fail "the build finished but ${staging_output}/argocd is missing"
# One binary, every component: it looks at the name it was called by.
ln -sf argocd "${staging_output}/argocd-application-controller"
ln -sf argocd "${staging_output}/argocd-repo-server"
"${staging_output}/argocd-application-controller" --help > /dev/null \
    || fail "the built binary does not answer --help as argocd-application-controller"

# CRDs of the same module version.
rm -rf "${crd_directory}.partial"
mkdir -p "${crd_directory}.partial"
cp "${source_directory}"/manifests/crds/*-crd.yaml "${crd_directory}.partial/"
[[ -f "${crd_directory}.partial/application-crd.yaml" ]] \
    || fail "the module has no manifests/crds/application-crd.yaml"
rm -rf "${crd_directory}"
mv "${crd_directory}.partial" "${crd_directory}"

# Publish: the binary and its links appear in bin/ together.
rm -rf "${bin_directory}"
mv "${staging_output}" "${bin_directory}"
rm -rf "${source_directory}"

echo "argocd build: finished in $((SECONDS - build_started_at)) s" >&2
echo "${bin_directory}"
