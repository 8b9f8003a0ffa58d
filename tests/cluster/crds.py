#!/usr/bin/env python3
"""Materialises the upstream CRD sets of the local cluster into the cache, verified.

Each set of tests/cluster/crd-sources.yaml ends up in
``${MTLS_CACHE_DIR:-~/.cache/zerotrust-mtls}/crds/<set>-<version>/`` with every file
checked against its pinned sha256, taken from (in this order):

1. the cache itself, when that directory is complete and every file still matches;
2. the Go module proxy (``go mod download -json <module>@<version>``, files read from
   the module's ``Dir``), or the pinned upstream URLs (``url_base`` + path);
3. the offline directory named by ``MTLS_CRDS_DIR`` (files named in ``offline``),
   materialised as ``<set>-offline-<digest>/``, when the online source cannot be
   reached. These are accepted as they are: test data whose provenance that
   directory documents.

A pinned file whose sha256 differs is refused (never replaced by the offline copy),
and a set with no source at all stops the run: both with one sentence, raised as
CrdSourceError. An online source that failed is not retried for an hour while an
offline copy serves (the record is ``crds/.online-unreachable.json``; delete it to
retry at once), so warm starts never wait for a network that is not there.

Run as a script (``crds.py ensure``) it is the check up.sh makes before it starts
anything; bootstrap.py imports it to find the files to apply. Needs only PyYAML.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SOURCES_FILE = Path(__file__).resolve().parent / "crd-sources.yaml"
MANIFEST_NAME = ".crd-set.json"
UNREACHABLE_RECORD = ".online-unreachable.json"
ONLINE_RETRY_AFTER_S = 3600
GO_TIMEOUT_S = 180
URL_TIMEOUT_S = 20
URL_HOST = "raw.githubusercontent.com"

# The top-level metadata.name of each CRD document: enough to check `needs` without
# parsing megabytes of schema.
_CRD_NAME = re.compile(rb"^  name: ([a-z0-9][a-z0-9.-]*)\s*$", re.MULTILINE)


class CrdSourceError(Exception):
    """Stops the run; the message is one sentence (without the final period)."""


class _Unreachable(Exception):
    """The online source of a set could not be reached; the offline copy may serve."""


@dataclass
class CrdSet:
    name: str
    version: str
    directory: Path
    origin: str
    files: list[Path] = field(default_factory=list)


def cache_root(env=None) -> Path:
    env = os.environ if env is None else env
    base = env.get("MTLS_CACHE_DIR") or str(Path.home() / ".cache" / "zerotrust-mtls")
    return Path(base) / "crds"


def load_sources(path: Path = SOURCES_FILE) -> dict:
    with open(path, encoding="utf-8") as handle:
        sets = (yaml.safe_load(handle) or {}).get("sets") or {}
    for name, spec in sets.items():
        online = [key for key in ("go_module", "url_base") if spec.get(key)]
        if len(online) != 1 or not spec.get("version") or not spec.get("files"):
            raise CrdSourceError(f"set {name} in {path} needs a version, files and exactly one of go_module or url_base; fix that file")
        for entry in spec["files"]:
            if not re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256", ""))):
                raise CrdSourceError(f"file {entry.get('path')} of set {name} in {path} has no valid sha256 pin")
    return sets


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ensure_sets(sources: dict | None = None, env=None, go_command: str | None = None, log=None) -> list[CrdSet]:
    """Every set of `sources`, materialised and verified; raises CrdSourceError."""
    env = dict(os.environ if env is None else env)
    sources = load_sources() if sources is None else sources
    log = log or (lambda message: print(f"[cluster] {message}", file=sys.stderr))
    root = cache_root(env)
    root.mkdir(parents=True, exist_ok=True)
    offline_dir = Path(env["MTLS_CRDS_DIR"]) if env.get("MTLS_CRDS_DIR") else None
    unreachable = _read_json(root / UNREACHABLE_RECORD)
    unreachable_before = dict(unreachable)
    result, missing = [], []

    for name, spec in sources.items():
        pinned_dir = root / f"{name}-{spec['version']}"
        pins = [(Path(entry["path"]).name, entry["sha256"]) for entry in spec["files"]]
        cached = _complete_set(name, spec["version"], pinned_dir, pins)
        if cached:
            result.append(cached)
            continue

        offline_files = _offline_files(offline_dir, spec)
        failed = unreachable.get(name) or {}
        reason = failed.get("reason", "")
        recently_failed = offline_files and time.time() - failed.get("at", 0) < ONLINE_RETRY_AFTER_S
        if not recently_failed:
            try:
                contents, origin = _fetch_online(name, spec, env, go_command)
            except _Unreachable as error:
                reason = str(error)
                unreachable[name] = {"at": time.time(), "reason": reason}
            else:
                _check_needs(name, spec, contents, origin)
                crd_set = _write_set(root, pinned_dir, name, spec["version"], origin, contents)
                unreachable.pop(name, None)
                log(f"CRD set {name} {spec['version']}: {origin}, verified, cached in {pinned_dir}")
                result.append(crd_set)
                continue

        if offline_files:
            contents = [(path.name, path.read_bytes()) for path in offline_files]
            digest = sha256(b"".join(sha256(data).encode() for _, data in contents))[:12]
            offline_set_dir = root / f"{name}-offline-{digest}"
            origin = f"offline copy from MTLS_CRDS_DIR={offline_dir}"
            crd_set = _complete_set(name, "offline", offline_set_dir, [(n, sha256(d)) for n, d in contents])
            if not crd_set:
                _check_needs(name, spec, contents, origin)
                crd_set = _write_set(root, offline_set_dir, name, "offline", origin, contents)
                log(f"CRD set {name}: the pinned {spec['version']} could not be fetched ({_short(reason)}); using the {origin}")
            result.append(crd_set)
            continue
        missing.append((name, spec, reason))

    if unreachable != unreachable_before:
        _write_json(root / UNREACHABLE_RECORD, unreachable)
    if missing:
        raise CrdSourceError(_missing_sentence(missing, offline_dir, env))
    return result


def _fetch_online(name: str, spec: dict, env: dict, go_command: str | None) -> tuple[list[tuple[str, bytes]], str]:
    if spec.get("go_module"):
        directory, origin = _go_module_dir(spec, env, go_command)
        contents = []
        for entry in spec["files"]:
            path = directory / entry["path"]
            try:
                data = path.read_bytes()
            except OSError:
                raise CrdSourceError(
                    f"the Go module {spec['go_module']}@{spec['version']} has no file {entry['path']}; correct that path in {SOURCES_FILE.name}"
                ) from None
            _verify(name, entry, data, f"{spec['go_module']}@{spec['version']}/{entry['path']}")
            contents.append((path.name, data))
        return contents, origin

    contents = []
    for entry in spec["files"]:
        url = _mirrored(spec["url_base"] + entry["path"], env)
        data = _download(url)
        if spec.get("render") == "linkerd-crds-metadata":
            data = render_linkerd_crds_metadata(data, url)
        _verify(name, entry, data, url)
        contents.append((Path(entry["path"]).name, data))
    return contents, f"pinned upstream files from {urllib.parse.urlsplit(_mirrored(spec['url_base'], env)).netloc}"


def _go_module_dir(spec: dict, env: dict, go_command: str | None) -> tuple[Path, str]:
    module = f"{spec['go_module']}@{spec['version']}"
    go = go_command or shutil.which("go", path=env.get("PATH"))
    if not go:
        raise _Unreachable("go is not installed")
    go_env = dict(env, GOFLAGS="-mod=mod", GOWORK="off")
    with tempfile.TemporaryDirectory(prefix="mtls-crds-") as outside_any_module:
        try:
            completed = subprocess.run(
                [go, "mod", "download", "-json", module], cwd=outside_any_module, env=go_env, capture_output=True, text=True, timeout=GO_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise _Unreachable(f"go mod download {module} took longer than {GO_TIMEOUT_S} s") from None
        except OSError as error:
            raise _Unreachable(f"cannot run {go}: {error}") from None
    try:
        info = json.loads(completed.stdout)
    except ValueError:
        info = {"Error": (completed.stderr or completed.stdout or f"exit status {completed.returncode}").strip()}
    if info.get("Error") or completed.returncode != 0 or not info.get("Dir"):
        raise _Unreachable(f"go mod download {module}: {info.get('Error') or completed.stderr.strip()}")
    if spec.get("go_sum") and info.get("Sum") != spec["go_sum"]:
        raise CrdSourceError(
            f"the Go module {module} has hash {info.get('Sum')}, but {SOURCES_FILE.name} pins "
            f"{spec['go_sum']}; refusing it (the pin or the module cache is wrong: check the "
            "pin, or run 'go clean -modcache')"
        )
    return Path(info["Dir"]), f"Go module {module}"


def _download(url: str) -> bytes:
    import urllib.error  # pylint: disable=import-outside-toplevel  # 50 ms: only when downloading
    import urllib.request  # pylint: disable=import-outside-toplevel

    request = urllib.request.Request(url, headers={"User-Agent": "zerotrust-mtls-crds"})
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT_S) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        raise _Unreachable(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise _Unreachable(f"{url}: {reason}") from None


def _mirrored(url: str, env: dict) -> str:
    """MTLS_CRDS_URL_MIRROR (scheme://host[:port][/prefix]) replaces scheme and host of pinned URLs."""
    mirror = env.get("MTLS_CRDS_URL_MIRROR")
    if not mirror:
        return url
    parts = urllib.parse.urlsplit(url)
    return mirror.rstrip("/") + parts.path


def render_linkerd_crds_metadata(data: bytes, where: str) -> bytes:
    """Renders the three Helm metadata lines of linkerd-crds' policy templates to fixed values.

    The created-by annotation line is dropped, the chart label becomes `linkerd-crds`
    and the control-plane namespace `linkerd`; any other template line is refused.
    """
    out = []
    for line in data.decode("utf-8").splitlines(keepends=True):
        if "{{" not in line:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        text = line.strip()
        if "partials.annotations.created-by" in text:
            continue
        if text.startswith("helm.sh/chart:"):
            out.append(f"{indent}helm.sh/chart: linkerd-crds\n")
        elif text.startswith("linkerd.io/control-plane-ns:"):
            out.append(f"{indent}linkerd.io/control-plane-ns: linkerd\n")
        else:
            raise CrdSourceError(
                f"{where} has a template line that is not one of the three metadata lines "
                f"crds.py renders ({text[:80]!r}); pin a version whose templates it knows"
            )
    return "".join(out).encode("utf-8")


def _verify(name: str, entry: dict, data: bytes, where: str) -> None:
    actual = sha256(data)
    if actual != entry["sha256"]:
        raise CrdSourceError(
            f"refusing {where} of CRD set {name}: its sha256 is {actual} but "
            f"{SOURCES_FILE.name} pins {entry['sha256']}, so the upstream file changed or the "
            "download was altered; check the source and update the pin only if the new file is "
            "the one you want"
        )


def _check_needs(name: str, spec: dict, contents: list[tuple[str, bytes]], origin: str) -> None:
    found = {match.decode() for _, data in contents for match in _CRD_NAME.findall(data)}
    lacking = [crd for crd in spec.get("needs") or [] if crd not in found]
    if lacking:
        raise CrdSourceError(f"the {origin} for CRD set {name} lacks {', '.join(lacking)}, which the roles need; provide the complete upstream files")


def _offline_files(offline_dir: Path | None, spec: dict) -> list[Path]:
    if not offline_dir or not spec.get("offline"):
        return []
    files = [offline_dir / file_name for file_name in spec["offline"]]
    return files if all(path.is_file() for path in files) else []


def _complete_set(name: str, version: str, directory: Path, pins: list[tuple[str, str]]) -> CrdSet | None:
    """The cached set, if its manifest lists exactly these pins and every file still matches."""
    manifest = _read_json(directory / MANIFEST_NAME)
    if not manifest or [(f["name"], f["sha256"]) for f in manifest.get("files", [])] != pins:
        return None
    files = [directory / file_name for file_name, _ in pins]
    try:
        if any(sha256(path.read_bytes()) != digest for path, (_, digest) in zip(files, pins)):
            return None
    except OSError:
        return None
    return CrdSet(name, version, directory, manifest.get("origin", ""), files)


def _write_set(root: Path, directory: Path, name: str, version: str, origin: str, contents: list[tuple[str, bytes]]) -> CrdSet:
    """Writes the set into a temporary directory and renames it into place."""
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=root))
    try:
        for file_name, data in contents:
            (staging / file_name).write_bytes(data)
        manifest = {"set": name, "version": version, "origin": origin, "files": [{"name": file_name, "sha256": sha256(data)} for file_name, data in contents]}
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
        os.chmod(staging, 0o755)
        if directory.exists():
            shutil.rmtree(directory)  # incomplete or altered: replaced as a whole
        try:
            os.rename(staging, directory)
        except OSError:
            if not directory.is_dir():  # not a concurrent run that got there first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return CrdSet(name, version, directory, origin, [directory / file_name for file_name, _ in contents])


def _missing_sentence(missing: list, offline_dir: Path | None, env: dict) -> str:
    names = ", ".join(f"{name} {spec['version']}" for name, spec, _ in missing)
    offline_names = ", ".join(file_name for _, spec, _ in missing for file_name in spec.get("offline") or [])
    absent = ", ".join(
        file_name for _, spec, _ in missing for file_name in spec.get("offline") or [] if not offline_dir or not (offline_dir / file_name).is_file()
    )
    hosts = []
    if any(spec.get("go_module") for _, spec, _ in missing):
        hosts.append(f"the Go module proxy (GOPROXY={env.get('GOPROXY') or _go_proxy(env)}) with Go installed")
    if any(spec.get("url_base") for _, spec, _ in missing):
        hosts.append(URL_HOST)
    # The first failure of each kind of source, without the long URL it names.
    reasons = {}
    for _, spec, reason in missing:
        kind = "the Go module proxy" if spec.get("go_module") else URL_HOST
        if reason and kind not in reasons:
            first = reason.strip().splitlines()[0]
            tail = re.search(r'(?:"[^"]*"|https?://\S+): (.+)$', first)
            reasons[kind] = f"{kind}: {_short(tail.group(1) if tail else first)}"
    reasons = "; ".join(reasons.values())
    where = f"MTLS_CRDS_DIR={offline_dir} has no {absent}" if offline_dir else "MTLS_CRDS_DIR is not set"
    return (
        f"no source for the CRD sets {names} ({reasons}; {where}): set MTLS_CRDS_DIR to a directory "
        f'with the upstream CRD files {offline_names} (see docs/local-cluster.md, "Where the CRDs come '
        f'from"), or give this machine network access to {" and ".join(hosts)}'
    )


def _go_proxy(env: dict) -> str:
    try:
        return subprocess.run(["go", "env", "GOPROXY"], env=env, capture_output=True, text=True, timeout=30, check=False).stdout.strip() or "proxy.golang.org"
    except (OSError, subprocess.TimeoutExpired):
        return "proxy.golang.org"


def _short(reason: str) -> str:
    first = reason.strip().splitlines()[0] if reason.strip() else "not tried"
    return first if len(first) <= 200 else first[:197] + "..."


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def print_hashes(set_name: str, version: str | None) -> None:
    """Prints the sha256 of the listed files of a go_module set (for updating the pins)."""
    spec = dict(load_sources()[set_name])
    if version:
        spec["version"] = version
    directory, origin = _go_module_dir(spec, dict(os.environ), None)
    print(f"# {origin}")
    for entry in spec["files"]:
        print(f"{sha256((directory / entry['path']).read_bytes())}  {entry['path']}")


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "ensure"
    try:
        if command == "ensure":
            for crd_set in ensure_sets():
                if "-v" in argv[2:]:
                    print(f"{crd_set.name}\t{crd_set.version}\t{crd_set.directory}\t{crd_set.origin}")
            return 0
        if command == "hashes" and len(argv) in (3, 4):
            print_hashes(argv[2], argv[3] if len(argv) == 4 else None)
            return 0
    except CrdSourceError as error:
        print(f"[cluster] ERROR: {error}.", file=sys.stderr)
        return 1
    except _Unreachable as error:
        print(f"[cluster] ERROR: {error}.", file=sys.stderr)
        return 1
    print("usage: crds.py [ensure [-v] | hashes <set> [<version>]]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
