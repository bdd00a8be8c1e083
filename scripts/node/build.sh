#!/usr/bin/env bash
# Builds the container runtime of the local Kubernetes node from Go modules and one C file:
# runc, containerd with containerd-shim-runc-v2 and ctr, the CNI plugins (bridge, loopback,
# host-local, portmap) and the pause binary of the pod sandbox image.
#
# kubelet, kube-scheduler and kube-proxy are built by scripts/control-plane/build.sh, in the same
# `go build` as kube-apiserver (they share most packages). pause is compiled from
# build/pause/linux/pause.c of the k8s.io/kubernetes module pinned there (gcc -static).
#
# Needs Go (GOTOOLCHAIN=local), gcc, pkg-config and libseccomp-dev (runc is built with cgo and the
# seccomp tag); scripts/bootstrap.sh installs the Debian packages.
#
# Binaries land in ${SLUICE_CACHE_DIR:-<repo>/.cache}/node/<key>/bin, <key> made of the pinned
# versions; the CNI plugins in <key>/bin/cni. When all of them exist the script only prints the bin
# directory (warm path). The bin directory is always the last line of standard output; progress goes
# to standard error.
set -euo pipefail

script_directory="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repository_root="$(cd "${script_directory}/../.." && pwd)"
# shellcheck disable=SC2034 # used by cached-go-build.sh
build_label="node build"
# shellcheck source=../lib/cached-go-build.sh
source "${script_directory}/../lib/cached-go-build.sh"

# shellcheck source=versions.env
source "${script_directory}/versions.env"
# shellcheck source=../control-plane/versions.env
source "${script_directory}/../control-plane/versions.env"
: "${RUNC_VERSION:?RUNC_VERSION missing from versions.env}"
: "${CONTAINERD_VERSION:?CONTAINERD_VERSION missing from versions.env}"
: "${CNI_PLUGINS_VERSION:?CNI_PLUGINS_VERSION missing from versions.env}"
: "${KUBERNETES_VERSION:?KUBERNETES_VERSION missing from ../control-plane/versions.env}"

node_cache="$(tool_cache_directory "${repository_root}" node)"
version_key="runc-${RUNC_VERSION}_containerd-${CONTAINERD_VERSION}_cni-${CNI_PLUGINS_VERSION}_pause-${KUBERNETES_VERSION}"
key_directory="${node_cache}/${version_key}"
bin_directory="${key_directory}/bin"
binary_names=(runc containerd containerd-shim-runc-v2 ctr pause cni/bridge cni/loopback cni/host-local cni/portmap)

is_built() { all_executable "${bin_directory}" "${binary_names[@]}"; }
take_warm_path_or_lock "${node_cache}" "${key_directory}" "${bin_directory}"

find_go_command
command -v gcc > /dev/null 2>&1 || fail "gcc is missing (apt-get install gcc; scripts/bootstrap.sh does it)"
pkg-config --exists libseccomp 2> /dev/null \
    || fail "libseccomp is missing (apt-get install pkg-config libseccomp-dev; scripts/bootstrap.sh does it)"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

module_directory_of() {
    # Prints the directory of the downloaded source of module@version.
    go_module_field "$1" Dir
}

write_wrapper_module() {
    # A throwaway main module requiring module@version: the dependency's own replace directives do
    # not block the build (they would block `go install module@version`).
    local wrapper="$1" module="$2" version="$3" module_directory="$4"
    rm -rf "${wrapper}"
    mkdir -p "${wrapper}"
    {
        echo "// Throwaway wrapper module written by scripts/node/build.sh."
        echo "module sluice.local/node/$(basename "${wrapper}")"
        echo
        echo "go $(go_directive_of "${module_directory}/go.mod")"
        echo
        echo "require ${module} ${version}"
    } > "${wrapper}/go.mod"
}

echo "node build: cold build of ${version_key} into ${bin_directory}" >&2
echo "node build: using $("${go_command}" version)" >&2
build_started_at=${SECONDS}

staging_output="${key_directory}/bin.partial"
rm -rf "${staging_output}"
mkdir -p "${staging_output}/cni"

# --- runc (cgo + libseccomp) ----------------------------------------------------
runc_module_directory="$(module_directory_of "github.com/opencontainers/runc@${RUNC_VERSION}")"
write_wrapper_module "${key_directory}/wrapper-runc" github.com/opencontainers/runc "${RUNC_VERSION}" "${runc_module_directory}"
(
    cd "${key_directory}/wrapper-runc"
    run_step "go build runc (github.com/opencontainers/runc ${RUNC_VERSION})" \
        env CGO_ENABLED=1 nice -n 10 "${go_command}" build -mod=mod -trimpath \
            -tags "seccomp urfave_cli_no_docs" \
            -ldflags "-s -w -X main.version=${RUNC_VERSION#v}" \
            -o "${staging_output}/runc" github.com/opencontainers/runc
)

# --- containerd, its runc shim and ctr -----------------------------------------
containerd_module="github.com/containerd/containerd/v2"
containerd_module_directory="$(module_directory_of "${containerd_module}@${CONTAINERD_VERSION}")"
write_wrapper_module "${key_directory}/wrapper-containerd" "${containerd_module}" "${CONTAINERD_VERSION}" "${containerd_module_directory}"
(
    cd "${key_directory}/wrapper-containerd"
    run_step "go build containerd, containerd-shim-runc-v2, ctr (${containerd_module} ${CONTAINERD_VERSION})" \
        env CGO_ENABLED=0 nice -n 10 "${go_command}" build -mod=mod -trimpath \
            -tags "no_btrfs no_devmapper no_zfs urfave_cli_no_docs" \
            -ldflags "-s -w -X ${containerd_module}/version.Version=${CONTAINERD_VERSION} -X ${containerd_module}/version.Package=${containerd_module}" \
            -o "${staging_output}/" \
            "${containerd_module}/cmd/containerd" \
            "${containerd_module}/cmd/containerd-shim-runc-v2" \
            "${containerd_module}/cmd/ctr"
)

# --- CNI plugins ------------------------------------------------------------------
plugins_module="github.com/containernetworking/plugins"
plugins_module_directory="$(module_directory_of "${plugins_module}@${CNI_PLUGINS_VERSION}")"
write_wrapper_module "${key_directory}/wrapper-cni-plugins" "${plugins_module}" "${CNI_PLUGINS_VERSION}" "${plugins_module_directory}"
(
    cd "${key_directory}/wrapper-cni-plugins"
    run_step "go build CNI plugins bridge, loopback, host-local, portmap (${plugins_module} ${CNI_PLUGINS_VERSION})" \
        env CGO_ENABLED=0 nice -n 10 "${go_command}" build -mod=mod -trimpath \
            -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=${CNI_PLUGINS_VERSION}" \
            -o "${staging_output}/cni/" \
            "${plugins_module}/plugins/main/bridge" \
            "${plugins_module}/plugins/main/loopback" \
            "${plugins_module}/plugins/ipam/host-local" \
            "${plugins_module}/plugins/meta/portmap"
)

# --- pause ------------------------------------------------------------------------
kubernetes_module_directory="$(module_directory_of "k8s.io/kubernetes@${KUBERNETES_VERSION}")"
pause_source="${kubernetes_module_directory}/build/pause/linux/pause.c"
[[ -f "${pause_source}" ]] || fail "no ${pause_source} in k8s.io/kubernetes ${KUBERNETES_VERSION}"
run_step "gcc -Os -static pause (k8s.io/kubernetes ${KUBERNETES_VERSION} build/pause/linux/pause.c)" \
    gcc -Os -Wall -Werror -static -DVERSION="${KUBERNETES_VERSION}" -o "${staging_output}/pause" "${pause_source}"
strip "${staging_output}/pause" 2> /dev/null || true

# --- check and publish ----------------------------------------------------------
for name in "${binary_names[@]}"; do
    [[ -x "${staging_output}/${name}" ]] || fail "the build finished but ${staging_output}/${name} is missing"
done
runc_version="$("${staging_output}/runc" --version 2>&1)" || fail "the built runc does not run: ${runc_version}"
[[ "${runc_version}" == *"seccomp"* ]] || fail "the built runc has no seccomp support: ${runc_version}"
containerd_version="$("${staging_output}/containerd" --version 2>&1)" \
    || fail "the built containerd does not run: ${containerd_version}"
[[ "${containerd_version}" == *"${CONTAINERD_VERSION}"* ]] \
    || fail "the built containerd reports '${containerd_version}', expected ${CONTAINERD_VERSION}"

# Publish atomically: binaries appear in bin/ only once every one was built.
mkdir -p "${bin_directory}/cni"
for name in "${binary_names[@]}"; do
    mv -f "${staging_output}/${name}" "${bin_directory}/${name}"
done
rm -rf "${staging_output}"

echo "node build: finished in $((SECONDS - build_started_at)) s" >&2
echo "${bin_directory}"
