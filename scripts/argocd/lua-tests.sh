#!/usr/bin/env bash
# Runs Sluice's Argo CD health checks with Argo CD's own test code: TestLuaHealthScript in util/lua of the
# Argo CD module pinned in versions.env, the test every built-in health check upstream must pass.
#
#   scripts/argocd/lua-tests.sh [--customizations DIR] [--all]
#
# DIR (default deploy/argocd/resource_customizations/sluice.dev) holds <Kind>/health.lua, health_test.yaml
# and testdata/ in Argo CD's layout. --all also runs every upstream case (a check of the build itself).
#
# How: the module comes from the Go module proxy (never a GitHub release). Its go.mod has replace lines, so it
# is copied out of the read-only module cache into a writable folder; DIR is copied into its
# resource_customizations/sluice.dev, and `go test -c ./util/lua/` builds the test binary. Argo CD embeds the
# health.lua files in the binary (go:embed) but reads health_test.yaml and testdata/ from disk, so the binary
# is cached under ${SLUICE_CACHE_DIR:-<repo>/.cache}/argocd/<version>/lua-tests/bin/, keyed by the version and
# a hash of DIR's health.lua files: a warm run only copies DIR into a run folder and runs the binary there.
#
# Standard output: the `go test -v` output, then one summary line. Progress goes to standard error. Exit
# status: 0 when every case passed and every case of DIR's health_test.yaml files ran; 1 otherwise.
set -euo pipefail

script_directory="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repository_root="$(cd "${script_directory}/../.." && pwd)"
# shellcheck disable=SC2034 # used by cached-go-build.sh
build_label="argocd lua tests"
# shellcheck source=../lib/cached-go-build.sh
source "${script_directory}/../lib/cached-go-build.sh"

# shellcheck source=versions.env
source "${script_directory}/versions.env"
: "${ARGOCD_VERSION:?ARGOCD_VERSION missing from versions.env}"

group=sluice.dev
customizations="${repository_root}/deploy/argocd/resource_customizations/${group}"
run_all=false
while [[ $# -gt 0 ]]; do
    case "$1" in
        --customizations)
            [[ $# -ge 2 ]] || fail "--customizations needs a folder"
            customizations="$2"
            shift 2
            ;;
        --all)
            run_all=true
            shift
            ;;
        *) fail "unknown argument '$1' (usage: $0 [--customizations DIR] [--all])" ;;
    esac
done
[[ -d "${customizations}" ]] || fail "no folder ${customizations}"
argocd_cache="$(tool_cache_directory "${repository_root}" argocd)"
key_directory="${argocd_cache}/${ARGOCD_VERSION}/lua-tests"
bin_directory="${key_directory}/bin"
mkdir -p "${key_directory}"
[[ -f "${argocd_cache}/.gitignore" ]] || printf '*\n' > "${argocd_cache}/.gitignore"

# One snapshot of DIR is what gets built, hashed and run (DIR may change while this script runs).
# The test walks ../../resource_customizations from its working folder: the run folder holds only the
# snapshot (or, with --all, the module's folder with the snapshot in it), so only these cases run.
run_directory="$(mktemp -d "${key_directory}/run.XXXXXX")"
trap 'rm -rf "${run_directory}"' EXIT
snapshot="${run_directory}/resource_customizations/${group}"
mkdir -p "${run_directory}/resource_customizations" "${run_directory}/util/lua"
cp -r "${customizations}" "${snapshot}"
health_scripts=()
while IFS= read -r path; do
    health_scripts+=("${path}")
done < <(cd "${snapshot}" && find . -mindepth 2 -maxdepth 2 -name health.lua | LC_ALL=C sort)
[[ ${#health_scripts[@]} -gt 0 ]] || fail "no <Kind>/health.lua in ${customizations}"

# The binary embeds the health.lua files: its key is their names and contents.
scripts_hash="$(
    cd "${snapshot}"
    for path in "${health_scripts[@]}"; do
        printf '%s\n' "${path}"
        sha256sum < "${path}"
    done | sha256sum | cut -c1-16
)"
test_binary="${bin_directory}/util-lua-${scripts_hash}.test"

is_built() {
    [[ -x "${test_binary}" ]]
}

build_test_binary() {
    find_go_command
    export CGO_ENABLED=0
    export GOFLAGS="-mod=mod -buildvcs=false"
    echo "${build_label}: building Argo CD ${ARGOCD_VERSION} util/lua tests into ${test_binary}" >&2
    echo "${build_label}: using $("${go_command}" version)" >&2
    local source_directory="${key_directory}/source"
    if [[ ! -f "${source_directory}/.copied" ]]; then
        local module_directory
        module_directory="$(go_module_field "github.com/argoproj/argo-cd/v3@${ARGOCD_VERSION}" Dir)"
        rm -rf "${source_directory}"
        run_step "copy the module out of the read-only module cache" cp -r "${module_directory}" "${source_directory}"
        chmod -R u+w "${source_directory}"
        touch "${source_directory}/.copied"
    fi
    [[ -f "${source_directory}/util/lua/health_test.go" ]] \
        || fail "Argo CD ${ARGOCD_VERSION} has no util/lua/health_test.go: the health tests moved; review this script"
    rm -rf "${source_directory}/resource_customizations/${group}"
    cp -r "${snapshot}" "${source_directory}/resource_customizations/${group}"
    mkdir -p "${bin_directory}"
    (
        cd "${source_directory}"
        run_step "go test -c -vet=off ./util/lua/" \
            nice -n 10 "${go_command}" test -c -vet=off -o "${test_binary}.partial" ./util/lua/
    )
    mv -f "${test_binary}.partial" "${test_binary}"
    # Binaries of earlier health.lua versions: keep the two newest besides this one.
    find "${bin_directory}" -maxdepth 1 -name 'util-lua-*.test' ! -path "${test_binary}" -printf '%T@ %p\n' \
        | sort -rn | tail -n +3 | cut -d' ' -f2- | xargs -r rm -f
}

started_at=${SECONDS}
if ! is_built; then
    exec 9> "${key_directory}/build.lock"
    if command -v flock > /dev/null 2>&1 && ! flock --nonblock 9; then
        echo "${build_label}: another build holds ${key_directory}/build.lock; waiting for it" >&2
        flock 9
    fi
    is_built || build_test_binary
    exec 9>&-
fi

pattern="^TestLuaHealthScript\$/^${group//./\\.}\$"
if [[ "${run_all}" == true ]]; then
    [[ -d "${key_directory}/source/resource_customizations" ]] \
        || fail "--all needs the module copy in ${key_directory}/source: remove ${bin_directory} and run again"
    for upstream in "${key_directory}/source/resource_customizations"/*; do
        [[ "$(basename "${upstream}")" == "${group}" ]] || cp -r "${upstream}" "${run_directory}/resource_customizations/"
    done
    pattern='^TestLuaHealthScript$'
fi

expected_cases="$(cat "${snapshot}"/*/health_test.yaml | grep -c 'inputPath:' || true)"
output_file="${run_directory}/go-test.out"
test_status=0
(cd "${run_directory}/util/lua" && "${test_binary}" -test.v -test.count=1 -test.run "${pattern}") \
    > "${output_file}" 2>&1 || test_status=$?
cat "${output_file}"
passed="$(grep -c -- "--- PASS: TestLuaHealthScript/${group}/" "${output_file}" || true)"
failed="$(grep -c -- "--- FAIL: TestLuaHealthScript/${group}/" "${output_file}" || true)"
all_ran="$(grep -c -E -- "--- (PASS|FAIL): TestLuaHealthScript/" "${output_file}" || true)"
summary="Argo CD ${ARGOCD_VERSION} TestLuaHealthScript: ${passed} of ${expected_cases} ${group} cases passed"
summary+=", ${failed} failed (${all_ran} cases run in all) in $((SECONDS - started_at)) s"
echo "${build_label}: ${summary}"
if [[ ${test_status} -ne 0 || "${passed}" -ne "${expected_cases}" ]]; then
    exit 1
fi
