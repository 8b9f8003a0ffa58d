#!/usr/bin/env bash
# Renders the role's PrometheusRule with default thresholds, then runs
# `promtool check rules` and `promtool test rules` on every tests/rules/*.test.yml.
# promtool is built with `go install` when missing and cached by version outside the
# repository. Usage: check-rules.sh            (prints the promtool path it used)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
# Prometheus v3.x is published to the Go proxy as module versions v0.3xx.y.
promtool_version="${PROMTOOL_VERSION:-v0.316.0}"
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/zerotrust-mtls/bin/promtool-$promtool_version"
promtool="${PROMTOOL:-$cache_dir/promtool}"

if [[ ! -x "$promtool" ]]; then
    echo "check-rules: building promtool $promtool_version into $cache_dir (several minutes, once)" >&2
    mkdir -p "$cache_dir"
    # remove_all_sd leaves out the service-discovery plugins: promtool's rule checks do
    # not need them, and some of their modules are not served by the Go proxy here.
    GOBIN="$cache_dir" GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
        go install -tags remove_all_sd "github.com/prometheus/prometheus/cmd/promtool@$promtool_version"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" "$here/render_rules.py" rules >"$work/rules.yml"
cp "$here"/rules/*.test.yml "$work/"
cd "$work"
"$promtool" check rules rules.yml
"$promtool" test rules ./*.test.yml
echo "promtool: $promtool"
