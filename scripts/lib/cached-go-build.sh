# shellcheck shell=bash
# Sourced by the scripts that build tools from Go modules (scripts/control-plane, scripts/node,
# scripts/keda): what they share, so each script only says what it builds.
# - the cache folder of a tool, ${SLUICE_CACHE_DIR:-<repo>/.cache}/<tool>, never committed;
# - the warm path (file tests only) and one build at a time per version key (flock);
# - the Go toolchain (never a downloaded one: GOTOOLCHAIN=local) and timed build steps;
# - reading a module's go.mod or source folder from the Go module proxy.
# The sourcing script sets build_label (for messages, e.g. "node build") and defines is_built
# (true when every output is in place) before it calls take_warm_path_or_lock.
: "${build_label:?build_label must be set before sourcing cached-go-build.sh}"

fail() {
    echo "${build_label}: ERROR: $*" >&2
    exit 1
}

tool_cache_directory() {
    # Prints the absolute cache folder of tool $2 for the repository at $1.
    local repository_root="$1" tool="$2"
    local cache_root="${SLUICE_CACHE_DIR:-${repository_root}/.cache}"
    case "${cache_root}" in
        /*) ;;
        *) cache_root="${PWD}/${cache_root}" ;;
    esac
    echo "${cache_root}/${tool}"
}

all_executable() {
    # True when every name after the folder $1 is an executable file in it.
    local directory="$1" name
    shift
    for name in "$@"; do
        [[ -x "${directory}/${name}" ]] || return 1
    done
    return 0
}

take_warm_path_or_lock() {
    # Warm path: print the bin folder $3 and exit when is_built. Otherwise take the build lock of the
    # key folder $2 (a second caller waits, then finds the outputs and takes the warm path).
    local tool_cache="$1" key_directory="$2" bin_directory="$3"
    if is_built; then
        echo "${bin_directory}"
        exit 0
    fi
    mkdir -p "${key_directory}"
    [[ -f "${tool_cache}/.gitignore" ]] || printf '*\n' > "${tool_cache}/.gitignore"
    exec 9> "${key_directory}/build.lock"
    if command -v flock > /dev/null 2>&1 && ! flock --nonblock 9; then
        echo "${build_label}: another build holds ${key_directory}/build.lock; waiting for it" >&2
        flock 9
    fi
    if is_built; then
        echo "${bin_directory}"
        exit 0
    fi
}

find_go_command() {
    # Sets go_command, and GOTOOLCHAIN=local: a module asking for a newer Go fails with Go's own clear
    # message instead of downloading a toolchain.
    go_command="$(command -v go || true)"
    if [[ -z "${go_command}" && -x /usr/local/go/bin/go ]]; then
        go_command=/usr/local/go/bin/go
    fi
    [[ -n "${go_command}" ]] || fail "no Go toolchain found (looked on PATH and at /usr/local/go/bin/go)"
    export GOTOOLCHAIN=local
}

run_step() {
    # Runs "$@" with its output on standard error, timed; fails the build with the description.
    local description="$1"
    shift
    echo "${build_label}: ${description}" >&2
    local started_at=${SECONDS}
    if ! "$@" >&2; then
        fail "step failed: ${description} (command: $*)"
    fi
    echo "${build_label}: done in $((SECONDS - started_at)) s: ${description}" >&2
}

go_module_field() {
    # Prints field $2 (GoMod: the go.mod file; Dir: the source folder) of module@version $1, downloaded
    # from the Go module proxy.
    local module_at_version="$1" field="$2"
    local json
    json="$(GOFLAGS='' "${go_command}" mod download -json "${module_at_version}")" \
        || fail "could not download ${module_at_version} from the Go module proxy: ${json:-no output}"
    local value
    value="$(printf '%s\n' "${json}" | sed -n "s/^[[:space:]]*\"${field}\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p")"
    [[ -e "${value}" ]] || fail "no ${field} for ${module_at_version} (go mod download said: ${json})"
    echo "${value}"
}

go_directive_of() {
    # The `go` directive of the go.mod file $1.
    sed -n 's/^go \([0-9][0-9.]*\)[[:space:]]*$/\1/p' "$1" | head -n 1
}
