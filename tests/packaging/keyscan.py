# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finds private key material in files, directories, archives and logs.

Used by the packaging test to prove that a built collection, an execution-environment
build context, the logs of a verbose run and the records the playbooks write hold no
private key: PEM private keys of every type (PKCS#8, PKCS#1, SEC1, OpenSSH, encrypted or
not), DER keys (plain or encrypted PKCS#8), PKCS#12 bundles, any of these base64-encoded
(as Secret data is) or JSON-escaped (as a module result is), and given secret strings
(the demo passphrases). A mention of a key type is not a key: a PEM block counts only
when its body decodes to an ASN.1 structure.

    python tests/packaging/keyscan.py PATH... [--secret STRING]...   # exit 1 on a finding
"""

import argparse
import base64
import binascii
import io
import os
import re
import sys
import tarfile
import zipfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

PEM_KEY = re.compile(
    rb"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |ANY )?PRIVATE KEY)-----"
    rb"(.*?)-----END \1-----",
    re.DOTALL,
)
# Long enough that a base64 run of this size can hold a key (the smallest, Ed25519 PKCS#8,
# is 48 bytes = 64 characters); PEM body lines (64 characters) are caught as PEM instead.
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{64,}={0,2}")
# OID 1.2.840.113549.1.7.1 (pkcs7-data), which every PKCS#12 PFX carries in its authSafe.
PKCS7_DATA_OID = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01"
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".whl")
MAX_DEPTH = 3
MAX_DER_SIZE = 64 * 1024


class Finding(object):
    """One piece of key material: where it is and what it looks like (never the bytes)."""

    def __init__(self, where, kind):
        self.where = where
        self.kind = kind

    def __repr__(self):
        return "%s: %s" % (self.where, self.kind)

    def __eq__(self, other):
        return (self.where, self.kind) == (other.where, other.kind)

    def __hash__(self):
        return hash((self.where, self.kind))


def _b64(body):
    try:
        return base64.b64decode(re.sub(rb"\s+", b"", body), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _unescape(data):
    # A PEM inside JSON or a YAML double-quoted string has literal "\n" for its newlines.
    return data.replace(b"\\r", b"").replace(b"\\n", b"\n") if b"\\n" in data else data


def _pem_keys(data):
    kinds = []
    for match in PEM_KEY.finditer(_unescape(data)):
        label, body = match.group(1).decode("ascii"), match.group(2)
        # Header lines of legacy encrypted PEM (Proc-Type, DEK-Info) precede the body,
        # which is then ciphertext rather than ASN.1.
        legacy_encrypted = b"Proc-Type: 4,ENCRYPTED" in body
        body = b"\n".join(line for line in body.splitlines() if b":" not in line)
        decoded = _b64(body)
        if label == "OPENSSH PRIVATE KEY":
            if decoded.startswith(b"openssh-key-v1\x00"):
                kinds.append("PEM " + label)
        elif len(decoded) >= 32 and (legacy_encrypted or decoded[:1] == b"\x30"):
            kinds.append("PEM " + label)
    return kinds


def der_key_kind(data):
    """'DER private key', 'DER encrypted private key', 'PKCS#12' or None."""
    if not data or data[:1] != b"\x30" or len(data) > MAX_DER_SIZE:
        return None
    try:
        serialization.load_der_private_key(data, password=None)
        return "DER private key"
    except TypeError:
        return "DER encrypted private key"
    except Exception:  # pylint: disable=broad-except  # any parse error: not a DER key
        pass
    try:
        pkcs12.load_pkcs12(data, None)
        return "PKCS#12"
    except Exception:  # pylint: disable=broad-except  # not a PFX, or one with a password
        pass
    # A password-protected PFX: SEQUENCE { INTEGER 3, ContentInfo { pkcs7-data ... } }.
    if b"\x02\x01\x03" in data[:8] and PKCS7_DATA_OID in data[:40]:
        return "PKCS#12"
    return None


def scan_bytes(data, where, secrets=(), depth=0):
    """Findings in one blob: PEM keys, a DER key or PKCS#12 blob, secrets, base64 inside."""
    findings = [Finding(where, kind) for kind in _pem_keys(data)]
    kind = der_key_kind(data)
    if kind:
        findings.append(Finding(where, kind))
    for number, secret in enumerate(secrets, 1):
        if secret and secret.encode("utf-8") in data:
            findings.append(Finding(where, "secret string #%d" % number))
    if depth < MAX_DEPTH:
        for match in BASE64_RUN.finditer(data):
            decoded = _b64(match.group(0))
            if decoded:
                findings += [Finding(where, "base64 of " + found.kind) for found in scan_bytes(decoded, where, secrets, depth + 1)]
    return findings


def _is_archive(name):
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def scan_archive(data, where, secrets=(), depth=0):
    """Every member of a tar (any compression) or zip archive, archives inside included."""
    findings = []
    if depth > MAX_DEPTH:
        return findings
    members = []
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [(info.filename, archive.read(info)) for info in archive.infolist() if not info.is_dir()]
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in archive.getmembers():
                if member.isfile():
                    members.append((member.name, archive.extractfile(member).read()))
    for name, content in members:
        inner = "%s!%s" % (where, name)
        findings += scan_bytes(content, inner, secrets)
        if _is_archive(name):
            findings += scan_archive(content, inner, secrets, depth + 1)
    return findings


def scan_path(path, secrets=()):
    """Every regular file below ``path`` (or ``path`` itself), archives opened."""
    findings = []
    if os.path.isdir(path):
        files = []
        for root, _dirs, names in os.walk(path):
            files += [os.path.join(root, name) for name in names]
    else:
        files = [path]
    for name in sorted(files):
        if not os.path.isfile(name):
            continue
        with open(name, "rb") as handle:
            data = handle.read()
        findings += scan_bytes(data, name, secrets)
        if _is_archive(name):
            findings += scan_archive(data, name, secrets)
    return findings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--secret", action="append", default=[], help="a string that must not appear")
    args = parser.parse_args(argv)
    findings = []
    for path in args.paths:
        findings += scan_path(path, args.secret)
    for finding in findings:
        print(finding)
    print("keyscan: %d finding(s) in %s" % (len(findings), ", ".join(args.paths)))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
