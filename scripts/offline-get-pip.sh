#!/usr/bin/env bash
# ansible-test's sanity and unit venvs download a pip bootstrap script from a host that
# is unreachable on these machines. This writes a stand-in for every version it might
# ask for: it runs ensurepip, then installs the requested packages from the package
# index as usual (dropping the two flags that only the real script knows).
set -euo pipefail
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
for ver in 23.1.2 24.0 24.2 25.0.1 25.1.1 25.2 25.3; do
  cat > "$cache/get_pip_${ver//./_}.py" <<'PY'
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)
PY
done
