# Shared settings and helpers of the local control plane scripts (sourced, not run).
# shellcheck shell=bash
# shellcheck disable=SC2034  # the settings below are used by the scripts that source this file

CLUSTER_SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHECKOUT_DIR="$(cd "$CLUSTER_SCRIPTS_DIR/../.." && pwd)"

# The Kubernetes release is pinned once, in the wrapper module's go.mod.
KUBE_VERSION="$(awk '$1 == "k8s.io/kubernetes" || ($1 == "require" && $2 == "k8s.io/kubernetes") {print $NF; exit}' "$CLUSTER_SCRIPTS_DIR/k8s/go.mod")"
[[ -n "$KUBE_VERSION" ]] || { echo "[cluster] ERROR: no k8s.io/kubernetes version found in $CLUSTER_SCRIPTS_DIR/k8s/go.mod; restore that file from git." >&2; exit 1; }
KWOK_VERSION="v0.8.0"

MTLS_CACHE_DIR="${MTLS_CACHE_DIR:-$HOME/.cache/zerotrust-mtls}"
KUBE_BIN_DIR="$MTLS_CACHE_DIR/bin/kubernetes-$KUBE_VERSION"
KWOK_BIN_DIR="$MTLS_CACHE_DIR/bin/kwok-$KWOK_VERSION"

CLUSTER_DIR="${MTLS_CLUSTER_DIR:-$CHECKOUT_DIR/.cluster}"

# Ports of a cluster started earlier win over the defaults (an explicit environment
# variable still wins), so status/down/up reach the processes that really run.
if [[ -f "$CLUSTER_DIR/ports.env" ]]; then
    while IFS='=' read -r saved_name saved_value; do
        [[ "$saved_name" =~ ^MTLS_[A-Z_]+_PORT$ && "$saved_value" =~ ^[0-9]+$ ]] || continue
        [[ -n "${!saved_name:-}" ]] || printf -v "$saved_name" '%s' "$saved_value"
    done <"$CLUSTER_DIR/ports.env"
    unset saved_name saved_value
fi

# Fixed default ports, all on 127.0.0.1; each can be moved with its variable when taken.
ETCD_CLIENT_PORT="${MTLS_ETCD_CLIENT_PORT:-23790}"
ETCD_PEER_PORT="${MTLS_ETCD_PEER_PORT:-23800}"
APISERVER_PORT="${MTLS_APISERVER_PORT:-26443}"
CONTROLLER_MANAGER_PORT="${MTLS_CONTROLLER_MANAGER_PORT:-26257}"
SCHEDULER_PORT="${MTLS_SCHEDULER_PORT:-26259}"
KWOK_PORT="${MTLS_KWOK_PORT:-26080}"

# Every address the cluster hands out stays on loopback (see docs/local-cluster.md).
# up.sh writes these values out literally at the kube-apiserver and kwok flags
# (service range 127.200.0.0/24, --cidr, --node-ip), so that a grep of the flags shows
# them; keep the two in step.
POD_CIDR="127.201.0.0/16"
NODE_IP="127.0.0.10"
NODE_NAME="kwok-node-0"

# Processes started by up.sh, in start order; down.sh stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

pid_file() { printf '%s/run/%s.pid\n' "$CLUSTER_DIR" "$1"; }

# The PID of a component we started, if that process is still alive and still runs
# the binary we launched (the PID file records both), so a recycled PID is never
# signalled by mistake.
running_pid() {
    local name="$1" file pid expected_exe exe
    file="$(pid_file "$name")"
    [[ -f "$file" ]] || return 1
    { read -r pid; read -r expected_exe; } <"$file" || true
    [[ "${pid:-}" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    [[ -n "$exe" && "${exe% (deleted)}" == "${expected_exe:-}" ]] || return 1
    printf '%s\n' "$pid"
}

stop_component() {
    local name="$1" pid
    if pid="$(running_pid "$name")"; then
        kill -TERM "$pid" 2>/dev/null || true
        local waited=0
        while kill -0 "$pid" 2>/dev/null && (( waited < 100 )); do
            sleep 0.1; waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$(pid_file "$name")"
}

# Serialises up.sh and down.sh on one state directory: several people and the test
# command share a checkout, and two concurrent starts would race for ports and PID files.
# The lock is released when the script exits (fd 9 closes).
lock_cluster_dir() {
    exec 9>"$CLUSTER_DIR/.lock"
    if ! flock -n 9; then
        log "waiting for another up.sh/down.sh on $CLUSTER_DIR to finish"
        flock -w "${MTLS_LOCK_TIMEOUT:-1800}" 9 \
            || die "another up.sh or down.sh has held $CLUSTER_DIR/.lock for ${MTLS_LOCK_TIMEOUT:-1800}s; stop that run (or remove the lock if none runs), then rerun."
    fi
}

# True when something listens on 127.0.0.1:<port>.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

kubectl_like_get() {
    # Minimal authenticated GET against the API server with curl (kubectl is not
    # required on the machine); prints the body, fails on a non-2xx answer.
    curl --silent --show-error --fail --max-time 5 \
        --cacert "$CLUSTER_DIR/pki/ca.crt" \
        -H "Authorization: Bearer $(cat "$CLUSTER_DIR/pki/admin.token")" \
        "https://127.0.0.1:$APISERVER_PORT$1"
}
