#!/usr/bin/env bash
# Reports whether each component of the local control plane runs and is healthy.
# Exit status 0 only when all of them are up and the API server is ready.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/cluster/lib.sh
source "$here/lib.sh"

health_url() {
    case "$1" in
        etcd) echo "http://127.0.0.1:$ETCD_CLIENT_PORT/health" ;;
        kube-apiserver) echo "https://127.0.0.1:$APISERVER_PORT/readyz" ;;
        kube-controller-manager) echo "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz" ;;
        kube-scheduler) echo "https://127.0.0.1:$SCHEDULER_PORT/healthz" ;;
        kwok) echo "http://127.0.0.1:$KWOK_PORT/healthz" ;;
    esac
}

main() {
    local all_up=true name pid rss url
    printf '%-24s %-8s %-9s %-8s %s\n' COMPONENT PID RSS_MB HEALTH ENDPOINT
    for name in "${COMPONENTS[@]}"; do
        url="$(health_url "$name")"
        if pid="$(running_pid "$name")"; then
            rss="$(awk '/^VmRSS:/ {printf "%d", $2/1024}' "/proc/$pid/status" 2>/dev/null || echo '?')"
            local health=unhealthy
            # -k: health endpoints of the controllers serve self-signed certs; only the
            # status code matters here.
            curl --silent --fail --max-time 3 --insecure "$url" >/dev/null 2>&1 && health=ok
            [[ "$health" == ok ]] || all_up=false
            printf '%-24s %-8s %-9s %-8s %s\n' "$name" "$pid" "$rss" "$health" "$url"
        else
            all_up=false
            printf '%-24s %-8s %-9s %-8s %s\n' "$name" - - stopped "$url"
        fi
    done
    if [[ -f "$CLUSTER_DIR/kubeconfig" ]]; then
        echo "kubeconfig: $CLUSTER_DIR/kubeconfig (contexts: admin [default], restricted)"
    fi
    if $all_up; then
        echo "cluster: running"
    else
        echo "cluster: not running (start it with tests/cluster/up.sh or 'make cluster-up')"
        return 1
    fi
}

main "$@"
