# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parses the ca-bundle.pem the role wrote (argument 1, a file) with cryptography and
compares it with the PKI (argument 2: the cluster's chain.pem, argument 3: the root).
Prints JSON: the SHA-256 fingerprints found, whether the root and the whole chain are in
it, and how many PEM blocks of other types (a CRL, a key) it holds."""

import json
import re
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes


def fingerprints(path):
    with open(path, "rb") as handle:
        return [cert.fingerprint(hashes.SHA256()).hex() for cert in x509.load_pem_x509_certificates(handle.read())]


def main(bundle, chain, root):
    with open(bundle, "rb") as handle:
        text = handle.read()
    found = fingerprints(bundle)
    blocks = re.findall(rb"-----BEGIN ([A-Z0-9 ]+)-----", text)
    print(
        json.dumps(
            {
                "fingerprints": found,
                "has_root": all(fp in found for fp in fingerprints(root)),
                "equals_chain": found == fingerprints(chain),
                "other_blocks": [block.decode() for block in blocks if block != b"CERTIFICATE"],
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
