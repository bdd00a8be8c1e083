#!/usr/bin/env bash
# Builds the binaries of a local Kubernetes control plane from Go modules only:
# kube-apiserver, kube-controller-manager, kubectl, etcd and helm, and the node's kubelet,
# kube-scheduler and kube-proxy (built in the same `go build`).
#
# No container images, GitHub releases or dl.k8s.io: everything comes from the
# Go module proxy. `go install k8s.io/kubernetes/cmd/...` is refused because the
# kubernetes go.mod replaces its staging modules with ./staging directories, so
# this script writes a throwaway wrapper module that requires k8s.io/kubernetes
# and replaces every staging module with its published v0.Y.Z release
# (kubernetes/kubernetes#79384). etcd is built the same way from its own
# wrapper module; helm installs with plain `go install`.
#
# Binaries land in ${SLUICE_CACHE_DIR:-<repo>/.cache}/control-plane/<key>/bin,
# where <key> is made of the pinned versions in versions.env. When all of them
# already exist the script only prints that directory (warm path). The bin
# directory is always the last line of standard output; progress goes to
# standard error.
set -euo pipefail

script_directory="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repository_root="$(cd "${script_directory}/../.." && pwd)"

fail() {
    echo "control-plane build: ERROR: $*" >&2
    exit 1
}

# shellcheck source=versions.env
source "${script_directory}/versions.env"
: "${KUBERNETES_VERSION:?KUBERNETES_VERSION missing from versions.env}"
: "${ETCD_VERSION:?ETCD_VERSION missing from versions.env}"
: "${HELM_VERSION:?HELM_VERSION missing from versions.env}"

cache_root="${SLUICE_CACHE_DIR:-${repository_root}/.cache}"
case "${cache_root}" in
    /*) ;;
    *) cache_root="${PWD}/${cache_root}" ;;
esac
control_plane_cache="${cache_root}/control-plane"
version_key="kubernetes-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}"
key_directory="${control_plane_cache}/${version_key}"
bin_directory="${key_directory}/bin"
binary_names=(kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler kube-proxy etcd helm)

all_binaries_present() {
    local name
    for name in "${binary_names[@]}"; do
        [[ -x "${bin_directory}/${name}" ]] || return 1
    done
    return 0
}

# Warm path: nothing but file tests.
if all_binaries_present; then
    echo "${bin_directory}"
    exit 0
fi

mkdir -p "${key_directory}"
# The cache must never be committed, whatever the repository's .gitignore says.
[[ -f "${control_plane_cache}/.gitignore" ]] || printf '*\n' > "${control_plane_cache}/.gitignore"

# One build at a time per version key; a second caller waits, then finds the
# binaries and takes the warm path.
exec 9> "${key_directory}/build.lock"
if command -v flock > /dev/null 2>&1 && ! flock --nonblock 9; then
    echo "control-plane build: another build holds ${key_directory}/build.lock; waiting for it" >&2
    flock 9
fi
if all_binaries_present; then
    echo "${bin_directory}"
    exit 0
fi

go_command="$(command -v go || true)"
if [[ -z "${go_command}" && -x /usr/local/go/bin/go ]]; then
    go_command=/usr/local/go/bin/go
fi
[[ -n "${go_command}" ]] || fail "no Go toolchain found (looked on PATH and at /usr/local/go/bin/go)"

# Never let the go command try to download another toolchain: if a module asks
# for a newer Go than the installed one, fail with Go's own clear message.
export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

run_step() {
    local description="$1"
    shift
    echo "control-plane build: ${description}" >&2
    local started_at=${SECONDS}
    if ! "$@" >&2; then
        fail "step failed: ${description} (command: $*)"
    fi
    echo "control-plane build: done in $((SECONDS - started_at)) s: ${description}" >&2
}

module_file_of() {
    # Prints the path of the downloaded go.mod of module@version.
    local module_at_version="$1"
    local json
    json="$("${go_command}" mod download -json "${module_at_version}")" \
        || fail "could not download ${module_at_version} from the Go module proxy: ${json:-no output}"
    local module_file
    module_file="$(printf '%s\n' "${json}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [[ -f "${module_file}" ]] || fail "no go.mod found for ${module_at_version} (go mod download said: ${json})"
    echo "${module_file}"
}

go_directive_of() {
    sed -n 's/^go \([0-9][0-9.]*\)[[:space:]]*$/\1/p' "$1" | head -n 1
}

godebug_lines_of() {
    # Copies `godebug key=value` lines and `godebug ( ... )` blocks verbatim.
    awk '
        /^godebug[[:space:]]*\(/ { in_block = 1 }
        in_block { print; if ($0 ~ /^\)/) in_block = 0; next }
        /^godebug[[:space:]]/ { print }
    ' "$1"
}

echo "control-plane build: cold build of ${version_key} into ${bin_directory}" >&2
echo "control-plane build: using $("${go_command}" version)" >&2
build_started_at=${SECONDS}

staging_output="${key_directory}/bin.partial"
rm -rf "${staging_output}"
mkdir -p "${staging_output}"

# --- Kubernetes wrapper module ------------------------------------------------
kubernetes_module_file="$(module_file_of "k8s.io/kubernetes@${KUBERNETES_VERSION}")"
published_staging_version="v0.${KUBERNETES_VERSION#v1.}"
mapfile -t staging_modules < <(
    sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "${kubernetes_module_file}"
)
(( ${#staging_modules[@]} > 0 )) \
    || fail "found no ./staging replace lines in ${kubernetes_module_file}"
echo "control-plane build: ${#staging_modules[@]} staging modules, replaced with ${published_staging_version}" >&2

kubernetes_wrapper="${key_directory}/wrapper-kubernetes"
rm -rf "${kubernetes_wrapper}"
mkdir -p "${kubernetes_wrapper}"
{
    echo "// Throwaway wrapper module written by scripts/control-plane/build.sh."
    echo "module sluice.local/control-plane/kubernetes"
    echo
    echo "go $(go_directive_of "${kubernetes_module_file}")"
    echo
    godebug_lines_of "${kubernetes_module_file}"
    echo
    echo "require k8s.io/kubernetes ${KUBERNETES_VERSION}"
    echo
    echo "replace ("
    for staging_module in "${staging_modules[@]}"; do
        echo "	${staging_module} => ${staging_module} ${published_staging_version}"
    done
    echo ")"
} > "${kubernetes_wrapper}/go.mod"

kubernetes_minor="${KUBERNETES_VERSION#v1.}"
kubernetes_minor="${kubernetes_minor%%.*}"
kubernetes_ldflags="-s -w"
for version_package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    kubernetes_ldflags+=" -X ${version_package}.gitVersion=${KUBERNETES_VERSION}"
    kubernetes_ldflags+=" -X ${version_package}.gitMajor=1"
    kubernetes_ldflags+=" -X ${version_package}.gitMinor=${kubernetes_minor}"
    kubernetes_ldflags+=" -X ${version_package}.gitTreeState=clean"
done

(
    cd "${kubernetes_wrapper}"
    # The node's kubelet, kube-scheduler and kube-proxy share most packages with the API server and
    # the controller manager: one `go build` compiles them together (much faster than apart).
    run_step "go build kube-apiserver, kube-controller-manager, kubectl, kubelet, kube-scheduler, kube-proxy (k8s.io/kubernetes ${KUBERNETES_VERSION})" \
        nice -n 10 "${go_command}" build -mod=mod -trimpath -ldflags "${kubernetes_ldflags}" \
            -o "${staging_output}/" \
            k8s.io/kubernetes/cmd/kube-apiserver \
            k8s.io/kubernetes/cmd/kube-controller-manager \
            k8s.io/kubernetes/cmd/kubectl \
            k8s.io/kubernetes/cmd/kubelet \
            k8s.io/kubernetes/cmd/kube-scheduler \
            k8s.io/kubernetes/cmd/kube-proxy
)

# --- etcd wrapper module --------------------------------------------------------
etcd_module_file="$(module_file_of "go.etcd.io/etcd/server/v3@${ETCD_VERSION}")"
etcd_wrapper="${key_directory}/wrapper-etcd"
rm -rf "${etcd_wrapper}"
mkdir -p "${etcd_wrapper}"
{
    echo "// Throwaway wrapper module written by scripts/control-plane/build.sh."
    echo "module sluice.local/control-plane/etcd"
    echo
    echo "go $(go_directive_of "${etcd_module_file}")"
    echo
    godebug_lines_of "${etcd_module_file}"
    echo
    echo "require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}"
} > "${etcd_wrapper}/go.mod"
(
    cd "${etcd_wrapper}"
    run_step "go build etcd (go.etcd.io/etcd/server/v3 ${ETCD_VERSION})" \
        nice -n 10 "${go_command}" build -mod=mod -trimpath -ldflags "-s -w" \
            -o "${staging_output}/etcd" go.etcd.io/etcd/server/v3
)

# --- helm ---------------------------------------------------------------------
helm_module_file="$(module_file_of "helm.sh/helm/v3@${HELM_VERSION}")"
helm_client_go_version="$(sed -n 's#^[[:space:]]*k8s\.io/client-go[[:space:]]\{1,\}\(v[^[:space:]]*\).*#\1#p' "${helm_module_file}" | head -n 1)"
[[ -n "${helm_client_go_version}" ]] || fail "no k8s.io/client-go requirement in ${helm_module_file}"
helm_kubernetes_minor="${helm_client_go_version#v0.}"
helm_kubernetes_minor="${helm_kubernetes_minor%%.*}"
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
helm_ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for capability_package in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    helm_ldflags+=" -X ${capability_package}.k8sVersionMajor=1"
    helm_ldflags+=" -X ${capability_package}.k8sVersionMinor=${helm_kubernetes_minor}"
done
# `go install module@version` ignores any go.mod in the working directory.
(
    cd "${key_directory}"
    run_step "go install helm (helm.sh/helm/v3 ${HELM_VERSION})" \
        env GOBIN="${staging_output}" nice -n 10 "${go_command}" install -trimpath \
            -ldflags "${helm_ldflags}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
)

# --- check and publish ----------------------------------------------------------
for name in "${binary_names[@]}"; do
    [[ -x "${staging_output}/${name}" ]] || fail "the build finished but ${staging_output}/${name} is missing"
done
apiserver_version="$("${staging_output}/kube-apiserver" --version 2>&1)" \
    || fail "the built kube-apiserver does not run: ${apiserver_version}"
[[ "${apiserver_version}" == "Kubernetes ${KUBERNETES_VERSION}" ]] \
    || fail "the built kube-apiserver reports '${apiserver_version}', expected 'Kubernetes ${KUBERNETES_VERSION}'"
etcd_version="$("${staging_output}/etcd" --version 2>&1)" \
    || fail "the built etcd does not run: ${etcd_version}"
[[ "${etcd_version}" == *"etcd Version: ${ETCD_VERSION#v}"* ]] \
    || fail "the built etcd reports '${etcd_version}', expected version ${ETCD_VERSION#v}"

# Publish atomically: binaries appear in bin/ only once every one was built.
mkdir -p "${bin_directory}"
for name in "${binary_names[@]}"; do
    mv -f "${staging_output}/${name}" "${bin_directory}/${name}"
done
rm -rf "${staging_output}"

echo "control-plane build: finished in $((SECONDS - build_started_at)) s" >&2
echo "${bin_directory}"
