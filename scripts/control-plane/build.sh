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
# shellcheck disable=SC2034 # used by cached-go-build.sh
build_label="control-plane build"
# shellcheck source=../lib/cached-go-build.sh
source "${script_directory}/../lib/cached-go-build.sh"

# shellcheck source=versions.env
source "${script_directory}/versions.env"
: "${KUBERNETES_VERSION:?KUBERNETES_VERSION missing from versions.env}"
: "${ETCD_VERSION:?ETCD_VERSION missing from versions.env}"
: "${HELM_VERSION:?HELM_VERSION missing from versions.env}"

control_plane_cache="$(tool_cache_directory "${repository_root}" control-plane)"
version_key="kubernetes-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}"
key_directory="${control_plane_cache}/${version_key}"
bin_directory="${key_directory}/bin"
binary_names=(kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler kube-proxy etcd helm)

is_built() { all_executable "${bin_directory}" "${binary_names[@]}"; }
take_warm_path_or_lock "${control_plane_cache}" "${key_directory}" "${bin_directory}"

find_go_command
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

module_file_of() {
    # Prints the path of the downloaded go.mod of module@version.
    go_module_field "$1" GoMod
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
