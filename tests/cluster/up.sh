#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions run indirectly (by trap or wait_until) look unreachable
# Starts (or completes) the local control plane: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok, all on 127.0.0.1, then writes
# the kubeconfig, loads the upstream CRD sets (crds.py) and prints the kubeconfig path last.
# Idempotent: components that already run are left alone, missing ones are started.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/cluster/lib.sh
source "$here/lib.sh"

STARTED_THIS_RUN=()

# On any failure, stop what this run started so no half-started cluster stays behind;
# components that were already running before this run are not ours to stop here.
cleanup_on_failure() {
    local rc=$?
    if (( rc != 0 )) && (( ${#STARTED_THIS_RUN[@]} > 0 )); then
        local i
        for (( i=${#STARTED_THIS_RUN[@]}-1; i>=0; i-- )); do
            stop_component "${STARTED_THIS_RUN[$i]}"
        done
    fi
    exit "$rc"
}
trap cleanup_on_failure EXIT

# Starts one component detached from this shell (setsid) so it outlives `make`,
# records its PID and binary so down.sh can stop exactly this process later.
start_component() {
    local name="$1" port="$2" binary="$3"; shift 3
    if running_pid "$name" >/dev/null; then
        return 0
    fi
    if port_in_use "$port"; then
        die "port $port on 127.0.0.1 (for $name) is already in use by another process; stop that process or set $(port_variable "$name") to a free port, then rerun."
    fi
    local log_file="$CLUSTER_DIR/logs/$name.log"
    # 9>&-: the component must not inherit the lock of this run (see lock_cluster_dir).
    setsid "$binary" "$@" >>"$log_file" 2>&1 </dev/null 9>&- &
    local pid=$!
    printf '%s\n%s\n' "$pid" "$(readlink -f "$binary")" >"$(pid_file "$name")"
    STARTED_THIS_RUN+=("$name")
    log "started $name (pid $pid, 127.0.0.1:$port, log $log_file)"
}

port_variable() {
    case "$1" in
        etcd) echo MTLS_ETCD_CLIENT_PORT ;;
        kube-apiserver) echo MTLS_APISERVER_PORT ;;
        kube-controller-manager) echo MTLS_CONTROLLER_MANAGER_PORT ;;
        kube-scheduler) echo MTLS_SCHEDULER_PORT ;;
        kwok) echo MTLS_KWOK_PORT ;;
    esac
}

# Whether the process of a component's pid file still lives. Unlike running_pid, it does
# not ask for the component's binary: just after `setsid binary &` the process may still be
# the shell or setsid on its way to exec (seen under load: a healthy kube-apiserver was
# reported as exited, with an empty log). Only for components this run just started.
process_alive() {
    local pid state
    { read -r pid; } <"$(pid_file "$1")" 2>/dev/null || return 1
    [[ "${pid:-}" =~ ^[0-9]+$ ]] || return 1
    state="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    state="${state##*) }"   # the field after the command name, which may hold spaces
    [[ -n "$state" && "${state%% *}" != Z ]]
}

# Polls until the command succeeds; on timeout names the component and its log.
wait_until() {
    local name="$1" timeout_s="$2"; shift 2
    local deadline=$((SECONDS + timeout_s))
    until "$@" >/dev/null 2>&1; do
        if ! running_pid "$name" >/dev/null && ! process_alive "$name"; then
            die "$name exited while starting; read $CLUSTER_DIR/logs/$name.log, fix what its last lines say, and rerun (tests/cluster/down.sh --purge starts over with fresh state): $(tail -n 2 "$CLUSTER_DIR/logs/$name.log" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
        fi
        if (( SECONDS >= deadline )); then
            die "$name did not become healthy within ${timeout_s}s; read $CLUSTER_DIR/logs/$name.log."
        fi
        sleep 0.2
    done
}

etcd_healthy() {
    curl --silent --fail --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'
}
apiserver_ready() { kubectl_like_get /readyz; }
component_healthy() {
    curl --silent --fail --max-time 2 --insecure "https://127.0.0.1:$1/healthz"
}
kwok_healthy() { curl --silent --fail --max-time 2 "http://127.0.0.1:$KWOK_PORT/healthz"; }

# Everything the components need on disk: a CA, the API server's serving cert for
# every loopback name it is reached by, the service-account key pair, and tokens.
# Generated once; reruns keep them so existing kubeconfigs and tokens stay valid.
ensure_pki() {
    local pki="$CLUSTER_DIR/pki"
    [[ -s "$pki/apiserver.crt" && -s "$pki/sa.key" && -s "$pki/tokens.csv" ]] && return 0
    mkdir -p "$pki"
    chmod 0700 "$pki"
    local tmp
    tmp="$(mktemp -d "$pki/.new.XXXXXX")"
    (
        umask 077
        cd "$tmp"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
            -subj "/CN=zerotrust-mtls-local-cluster-ca" -keyout ca.key -out ca.crt 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
        # 127.200.0.1 is the in-cluster `kubernetes` Service (first address of the range).
        printf '%s\n' \
            "subjectAltName=IP:127.0.0.1,IP:127.200.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
            "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature" >apiserver.ext
        openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile apiserver.ext -out apiserver.crt 2>/dev/null
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
        openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
        local user
        for user in admin kube-controller-manager kube-scheduler kwok; do
            openssl rand -hex 32 >"$user.token"
        done
        # Static tokens: the admin is in system:masters; the controller manager and the
        # scheduler use the user names the RBAC bootstrap roles are bound to; kwok fakes
        # kubelets for every node, which needs node, pod status and lease rights.
        {
            echo "$(cat admin.token),mtls-admin,mtls-admin,\"system:masters\""
            echo "$(cat kube-controller-manager.token),system:kube-controller-manager,system:kube-controller-manager"
            echo "$(cat kube-scheduler.token),system:kube-scheduler,system:kube-scheduler"
            echo "$(cat kwok.token),kwok-controller,kwok-controller,\"system:masters\""
        } >tokens.csv
        rm -f apiserver.csr apiserver.ext ca.srl
        chmod 0600 ./*
    ) || { rm -rf "$tmp"; die "creating the cluster's certificates with openssl failed; check that openssl works, then rerun."; }
    local f
    for f in "$tmp"/*; do mv -f "$f" "$pki/"; done
    rmdir "$tmp"
}

# A kubeconfig for one of our own components, authenticated with its static token.
write_component_kubeconfig() {
    local user="$1" file="$CLUSTER_DIR/$1.kubeconfig"
    local tmp="$file.tmp.$$"
    (
        umask 077
        cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $CLUSTER_DIR/pki/ca.crt
users:
- name: $user
  user:
    tokenFile: $CLUSTER_DIR/pki/$user.token
contexts:
- name: local
  context: {cluster: local, user: $user}
current-context: local
EOF
    )
    mv -f "$tmp" "$file"
}

save_ports() {
    local file="$CLUSTER_DIR/ports.env"
    cat >"$file.tmp" <<EOF
# Ports of the running local cluster; lib.sh reads them back so that later
# up/status/down calls talk to the same processes.
MTLS_ETCD_CLIENT_PORT=$ETCD_CLIENT_PORT
MTLS_ETCD_PEER_PORT=$ETCD_PEER_PORT
MTLS_APISERVER_PORT=$APISERVER_PORT
MTLS_CONTROLLER_MANAGER_PORT=$CONTROLLER_MANAGER_PORT
MTLS_SCHEDULER_PORT=$SCHEDULER_PORT
MTLS_KWOK_PORT=$KWOK_PORT
EOF
    mv -f "$file.tmp" "$file"
}

python_for_bootstrap() {
    local candidate
    for candidate in "${MTLS_PYTHON:-}" "$CHECKOUT_DIR/.venv/bin/python" python3; do
        [[ -n "$candidate" ]] || continue
        if "$candidate" -c 'import kubernetes, yaml' >/dev/null 2>&1; then
            echo "$candidate"; return 0
        fi
    done
    die "no Python with the kubernetes and PyYAML packages was found; run 'make deps' (or pip install kubernetes pyyaml) or set MTLS_PYTHON, then rerun."
}

main() {
    local up_started=$SECONDS
    mkdir -p "$CLUSTER_DIR/run" "$CLUSTER_DIR/logs" "$CLUSTER_DIR/etcd"
    lock_cluster_dir
    local python
    python="$(python_for_bootstrap)"
    # The upstream CRD sets first (tests/cluster/crds.py): a set without a source stops
    # the run here with one sentence, before anything is built or started. Warm: ~0.3 s.
    MTLS_CACHE_DIR="$MTLS_CACHE_DIR" "$python" "$here/crds.py" ensure || exit 1
    "$here/build.sh"
    chmod 0700 "$CLUSTER_DIR" "$CLUSTER_DIR/etcd"
    save_ports
    ensure_pki

    if ! running_pid etcd >/dev/null && port_in_use "$ETCD_PEER_PORT"; then
        die "port $ETCD_PEER_PORT on 127.0.0.1 (etcd peer) is already in use by another process; stop that process or set MTLS_ETCD_PEER_PORT to a free port, then rerun."
    fi
    start_component etcd "$ETCD_CLIENT_PORT" "$(command -v etcd)" \
        --name mtls-local --data-dir "$CLUSTER_DIR/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
        --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "mtls-local=http://127.0.0.1:$ETCD_PEER_PORT" \
        --quota-backend-bytes 2147483648
    wait_until etcd 60 etcd_healthy

    local apiserver_launched=$SECONDS apiserver_was_running=false
    running_pid kube-apiserver >/dev/null && apiserver_was_running=true
    # WatchList=false: Debian's etcd 3.4 lacks RequestWatchProgress, so the API server
    # answers watch-list streams with an error; kwok (client-go 0.36) then kept a stale
    # cache, its lease renewals conflicted and the fake node flapped NotReady. With the
    # gate off, clients get plain list+watch.
    start_component kube-apiserver "$APISERVER_PORT" "$KUBE_BIN_DIR/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
        --tls-cert-file "$CLUSTER_DIR/pki/apiserver.crt" --tls-private-key-file "$CLUSTER_DIR/pki/apiserver.key" \
        --client-ca-file "$CLUSTER_DIR/pki/ca.crt" \
        --service-cluster-ip-range=127.200.0.0/24 \
        --endpoint-reconciler-type none \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$CLUSTER_DIR/pki/sa.pub" \
        --service-account-signing-key-file "$CLUSTER_DIR/pki/sa.key" \
        --token-auth-file "$CLUSTER_DIR/pki/tokens.csv" \
        --authorization-mode RBAC \
        --allow-privileged=true \
        --enable-aggregator-routing=false \
        --feature-gates WatchList=false \
        --profiling=false
    wait_until kube-apiserver 180 apiserver_ready
    local apiserver_ready_s=$((SECONDS - apiserver_launched))

    write_component_kubeconfig kube-controller-manager
    write_component_kubeconfig kube-scheduler
    write_component_kubeconfig kwok

    start_component kube-controller-manager "$CONTROLLER_MANAGER_PORT" "$KUBE_BIN_DIR/kube-controller-manager" \
        --kubeconfig "$CLUSTER_DIR/kube-controller-manager.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" \
        --leader-elect=false --use-service-account-credentials=true \
        --controllers '*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle,-route' \
        --service-account-private-key-file "$CLUSTER_DIR/pki/sa.key" \
        --root-ca-file "$CLUSTER_DIR/pki/ca.crt" \
        --cluster-signing-cert-file "$CLUSTER_DIR/pki/ca.crt" \
        --cluster-signing-key-file "$CLUSTER_DIR/pki/ca.key" \
        --profiling=false
    start_component kube-scheduler "$SCHEDULER_PORT" "$KUBE_BIN_DIR/kube-scheduler" \
        --kubeconfig "$CLUSTER_DIR/kube-scheduler.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" \
        --leader-elect=false --profiling=false
    start_component kwok "$KWOK_PORT" "$KWOK_BIN_DIR/kwok" \
        --kubeconfig "$CLUSTER_DIR/kwok.kubeconfig" \
        --config "$KWOK_BIN_DIR/stages.yaml" \
        --manage-all-nodes=true \
        --cidr=127.201.0.0/16 --node-ip=127.0.0.10 \
        --node-lease-duration-seconds 40 \
        --server-address "127.0.0.1:$KWOK_PORT"
    wait_until kube-controller-manager 120 component_healthy "$CONTROLLER_MANAGER_PORT"
    wait_until kube-scheduler 120 component_healthy "$SCHEDULER_PORT"
    wait_until kwok 120 kwok_healthy

    MTLS_CLUSTER_DIR="$CLUSTER_DIR" MTLS_APISERVER_PORT="$APISERVER_PORT" \
        MTLS_NODE_NAME="$NODE_NAME" MTLS_NODE_IP="$NODE_IP" MTLS_NODE_POD_CIDR="${POD_CIDR%/*}/24" \
        MTLS_CACHE_DIR="$MTLS_CACHE_DIR" "$python" "$here/bootstrap.py" \
        || die "configuring the cluster failed (see the message above); fix that and rerun up.sh."

    if $apiserver_was_running; then
        log "cluster ready in $((SECONDS - up_started)) s (kube-apiserver was already running)"
    else
        log "cluster ready in $((SECONDS - up_started)) s (kube-apiserver ready ${apiserver_ready_s} s after launch)"
    fi
    trap - EXIT
    echo "$CLUSTER_DIR/kubeconfig"
}

main "$@"
exit 0
