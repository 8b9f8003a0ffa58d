#!/usr/bin/env bash
# Builds (once) the real consumers of our PKI from the Go module proxy, at the versions
# pinned in tests/cluster/consumers/versions.env, and caches them by version outside
# the checkout:
#   ${MTLS_CACHE_DIR:-$HOME/.cache/zerotrust-mtls}/bin/istiod-<v>/{pilot-discovery,pilot-agent}
#   .../bin/trust-manager-<v>/trust-manager
#   .../bin/cert-manager-controller-<v>/cert-manager-controller
#   .../bin/spire-server-<v>/spire-server
#   .../bin/spire-agent-<v>/spire-agent
# Each is built from a small wrapper module of ours in tests/cluster/consumers/<dir>
# (go.mod + go.sum committed, so the whole module graph is pinned).
#
# Usage:
#   build-consumers.sh [NAME...]       build the named consumers (default: all) unless
#                                      cached; a failing one is reported with its error
#                                      and the others still build; exit 1 if any failed
#   build-consumers.sh --print-bin NAME  print the absolute path of NAME's cached main
#                                      binary (istiod: pilot-discovery); exit 1 if not built
#   build-consumers.sh --print-dir NAME  print NAME's cache directory (exit 1 if not built)
#   build-consumers.sh --list          print the names, one a line
# Names: istiod cert-manager-controller trust-manager spire-server spire-agent
# Progress goes to stderr; only --print-* and --list write to stdout.
# MTLS_BUILD_JOBS (default 2) caps parallel compile jobs (go build -p).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/cluster/lib.sh
source "$here/lib.sh"

consumers_dir="$here/consumers"
versions_file="$consumers_dir/versions.env"
[[ -f "$versions_file" ]] || die "$versions_file is missing; restore it from git."
# shellcheck source=tests/cluster/consumers/versions.env
source "$versions_file"

ALL_NAMES=(istiod cert-manager-controller trust-manager spire-server spire-agent)

# Per consumer: wrapper module dir, the upstream module and its pinned version, the
# binaries ("package=name" pairs), CGO, and extra -ldflags (version stamps).
consumer_spec() {
    local name="$1"
    MODULE_DIR="" UPSTREAM="" VERSION="" BINARIES=() CGO=0 STAMP=""
    case "$name" in
        istiod)
            MODULE_DIR=istiod UPSTREAM=istio.io/istio VERSION="$ISTIO_VERSION"
            BINARIES=("istio.io/istio/pilot/cmd/pilot-discovery=pilot-discovery"
                      "istio.io/istio/pilot/cmd/pilot-agent=pilot-agent")
            local kv commit="${ISTIO_VERSION##*-}"
            # What `pilot-discovery version` reports (Istio's dev builds look the same).
            for kv in "buildVersion=$ISTIO_RELEASE_LINE-alpha.$commit" "buildGitRevision=$commit" \
                    buildStatus=Clean "buildTag=$ISTIO_VERSION" buildHub=local buildOS=linux buildArch=amd64; do
                STAMP+=" -X istio.io/istio/pkg/version.$kv"
            done
            ;;
        trust-manager)
            MODULE_DIR=trust-manager UPSTREAM=github.com/cert-manager/trust-manager VERSION="$TRUST_MANAGER_VERSION"
            BINARIES=("github.com/cert-manager/trust-manager/cmd/trust-manager=trust-manager")
            ;;
        cert-manager-controller)
            MODULE_DIR=cert-manager-controller UPSTREAM=github.com/cert-manager/cert-manager VERSION="$CERT_MANAGER_VERSION"
            BINARIES=(".=cert-manager-controller")
            STAMP=" -X github.com/cert-manager/cert-manager/pkg/util.AppVersion=$CERT_MANAGER_VERSION"
            ;;
        spire-server|spire-agent)
            MODULE_DIR=spire UPSTREAM=github.com/spiffe/spire VERSION="$SPIRE_VERSION" CGO=1
            BINARIES=("github.com/spiffe/spire/cmd/$name=$name")
            STAMP=" -X github.com/spiffe/spire/pkg/common/version.gittag=${SPIRE_VERSION#v}"
            ;;
        *)
            return 1
            ;;
    esac
}

valid_name() {
    consumer_spec "$1" 2>/dev/null \
        || die "unknown consumer '$1'; the names are: ${ALL_NAMES[*]}."
}

out_dir_of() { printf '%s/bin/%s-%s\n' "$MTLS_CACHE_DIR" "$1" "$VERSION"; }

# A digest of everything a build of the current spec depends on besides the Go
# toolchain: version, flags and the wrapper module's files. It is stored beside the
# binaries, so that a change to our wrapper (main.go, go.mod, go.sum) rebuilds even
# though the upstream version, and so the directory name, stay the same.
source_digest() {
    local module_path="$consumers_dir/$MODULE_DIR"
    {
        printf '%s\n' "$VERSION" "$CGO" "$STAMP" "${BINARIES[@]}"
        find "$module_path" -maxdepth 1 -type f \( -name 'go.mod' -o -name 'go.sum' -o -name '*.go' \) \
            -print0 | sort -z | xargs -0 cat
    } | sha256sum | cut -d' ' -f1
}

# True when every binary of the current spec is in dir, built from the current sources.
is_cached() {
    local dir="$1" pair
    for pair in "${BINARIES[@]}"; do
        [[ -x "$dir/${pair#*=}" ]] || return 1
    done
    [[ -f "$dir/.source-digest" && "$(cat "$dir/.source-digest")" == "$(source_digest)" ]]
}

# The version the wrapper module's go.mod requires of module $2 (require line or block).
required_version() {
    awk -v mod="$2" '
        $1 == "require" && $2 == mod { print $3; exit }
        $1 == "require" && $2 == "(" { inblock = 1; next }
        inblock && $1 == ")" { inblock = 0; next }
        inblock && $1 == mod { print $2; exit }
    ' "$1"
}

# The first line of a failed build's output that states the error (go's own
# "go: ..." lines, compiler "file.go:L:C: ..." lines), else its last line; progress
# lines ("go: downloading ...") and our timing lines are skipped.
first_error() {
    local line noise='^go: (downloading|finding|extracting|found) |^build of |^[[:space:]]*$'
    line="$(grep -v -E "$noise" "$1" | grep -m1 -E '^go: |^[^[:space:]]+\.go:[0-9]+:[0-9]+: |error|Forbidden|cannot|not found' || true)"
    [[ -n "$line" ]] || line="$(grep -v -E "$noise" "$1" | tail -n1 || true)"
    printf '%s\n' "${line:-no output}"
}

# Builds one consumer; returns non-zero (after saying why on stderr) when it fails.
build_one() {
    local name="$1"
    consumer_spec "$name"
    local out_dir log_file module_path
    out_dir="$(out_dir_of "$name")"
    if is_cached "$out_dir"; then
        log "$name $VERSION is cached in $out_dir"
        return 0
    fi
    command -v go >/dev/null 2>&1 || {
        log "ERROR: $name: no Go toolchain on PATH and no cached binaries in $out_dir; install Go 1.26 or newer (https://go.dev/dl/) and rerun."
        return 1
    }
    module_path="$consumers_dir/$MODULE_DIR"
    local required
    required="$(required_version "$module_path/go.mod" "$UPSTREAM")"
    if [[ "$required" != "$VERSION" ]]; then
        log "ERROR: $name: $versions_file pins $UPSTREAM $VERSION but $module_path/go.mod requires '${required:-nothing}'; change both to the same version, run 'go mod tidy' there and rerun."
        return 1
    fi
    if [[ "$CGO" == 1 ]] && ! command -v "$(go env CC 2>/dev/null || echo gcc)" >/dev/null 2>&1; then
        log "ERROR: $name needs a C compiler for CGO (sqlite) and none is on PATH; install gcc (Debian: apt-get install -y gcc libc6-dev) and rerun."
        return 1
    fi

    log_file="$MTLS_CACHE_DIR/logs/build-$name-$VERSION.log"
    mkdir -p "$(dirname "$log_file")" "$MTLS_CACHE_DIR/bin"
    # Build into a temporary sibling and rename it into place, so an interrupted build
    # never leaves a half-filled version directory that later runs would trust.
    local staging_dir
    staging_dir="$(mktemp -d "$MTLS_CACHE_DIR/bin/.$name-$VERSION.XXXXXX")"
    log "building $name $VERSION from the Go module proxy (first run only; log: $log_file)"
    : >"$log_file"
    local started=$SECONDS pair pkg bin
    # GNU time records wall time and peak memory (of the largest process: the linker
    # or the biggest compile) at the end of the log, when it is installed.
    local timer=()
    for pair in "${BINARIES[@]}"; do
        pkg="${pair%%=*}" bin="${pair#*=}"
        if [[ -x /usr/bin/time ]]; then
            timer=(/usr/bin/time -f "build of $bin: %e s wall, %M KB peak RSS" -a -o "$log_file")
        fi
        # -mod=readonly: the committed go.mod/go.sum are the whole truth; nothing is
        # resolved anew, so only the pinned module versions are ever downloaded.
        if ! (cd "$module_path" && CGO_ENABLED="$CGO" GOFLAGS="-mod=readonly -buildvcs=false" \
                "${timer[@]}" go build -p "${MTLS_BUILD_JOBS:-2}" -trimpath -ldflags "-s -w$STAMP" \
                -o "$staging_dir/$bin" "$pkg") >>"$log_file" 2>&1; then
            rm -rf "$staging_dir"
            log "ERROR: building $name $VERSION failed: $(first_error "$log_file") (full output: $log_file; a network-free rerun needs the Go module cache, otherwise 'go env GOPROXY' must reach a module proxy)."
            return 1
        fi
    done
    source_digest >"$staging_dir/.source-digest"
    rm -rf "$out_dir"
    mv "$staging_dir" "$out_dir"
    chmod 0755 "$out_dir"
    log "built $name $VERSION in $((SECONDS - started)) s into $out_dir"
}

print_path() {
    local what="$1" name="${2:-}"
    [[ -n "$name" ]] || die "$what needs a consumer name; the names are: ${ALL_NAMES[*]}."
    valid_name "$name"
    local out_dir
    out_dir="$(out_dir_of "$name")"
    is_cached "$out_dir" \
        || die "$name $VERSION is not built from the current tests/cluster/consumers sources (nothing complete and current in $out_dir); run tests/cluster/build-consumers.sh $name first."
    if [[ "$what" == --print-dir ]]; then
        printf '%s\n' "$out_dir"
    else
        local first="${BINARIES[0]}"
        printf '%s/%s\n' "$out_dir" "${first#*=}"
    fi
}

main() {
    case "${1:-}" in
        --print-bin|--print-dir)
            [[ $# -le 2 ]] || die "$1 takes one consumer name."
            print_path "$1" "${2:-}"
            return 0
            ;;
        --list)
            printf '%s\n' "${ALL_NAMES[@]}"
            return 0
            ;;
        -h|--help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
            return 0
            ;;
        -*)
            die "unknown option '$1'; see tests/cluster/build-consumers.sh --help."
            ;;
    esac
    local names=("$@") name
    (( ${#names[@]} )) || names=("${ALL_NAMES[@]}")
    for name in "${names[@]}"; do
        valid_name "$name"
    done

    # One builder at a time per cache: a second run waits, then finds the result cached.
    mkdir -p "$MTLS_CACHE_DIR/bin"
    exec 8>"$MTLS_CACHE_DIR/bin/.build-consumers.lock"
    if ! flock -n 8; then
        log "waiting for another build-consumers.sh to finish"
        flock -w "${MTLS_LOCK_TIMEOUT:-3600}" 8 \
            || die "another build-consumers.sh has held $MTLS_CACHE_DIR/bin/.build-consumers.lock for ${MTLS_LOCK_TIMEOUT:-3600}s; stop that run, then rerun."
    fi

    local failed=()
    for name in "${names[@]}"; do
        build_one "$name" || failed+=("$name")
    done
    if (( ${#failed[@]} )); then
        die "could not build: ${failed[*]} (the errors are above; the other consumers are built)."
    fi
}

main "$@"
