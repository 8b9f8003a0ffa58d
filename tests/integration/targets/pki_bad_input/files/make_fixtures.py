"""Writes the bad-input fixtures with bare `cryptography` (not with the collection).

    make_fixtures.py DIR PASSPHRASE

DIR/ca/   root.crt + root.key (good CA, pathlen 2), root-enc.key (the same key encrypted
          with PASSPHRASE), other.key (matches nothing), leaf.crt + leaf.key (not a CA),
          expired.crt + expired.key (a CA that expired yesterday), pathlen0.crt + .key
          (a CA that may not sign CAs), short.crt + short.key (a CA valid for 5 more
          days), constrained.crt + .key (permitted DNS: example.test), garbage.pem (a PEM frame around junk), empty.pem
DIR/out/  existing.crt + existing.key: a valid leaf a failing call must leave alone
"""

import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def write(path, data, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def key_pem(key, passphrase=None):
    enc = serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def cert(cn, key, issuer=None, issuer_key=None, ca=True, path_length=None, not_before=None, not_after=None, permitted_dns=None):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signer = issuer_key or key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - DAY)
        .not_valid_after(not_after or NOW + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    )
    if permitted_dns:
        builder = builder.add_extension(
            x509.NameConstraints(permitted_subtrees=[x509.DNSName(d) for d in permitted_dns], excluded_subtrees=None), critical=True
        )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def main():
    base, passphrase = sys.argv[1], sys.argv[2]
    ca_dir, out_dir = os.path.join(base, "ca"), os.path.join(base, "out")
    for d in (ca_dir, out_dir):
        os.makedirs(d, mode=0o700, exist_ok=True)

    def put(name, key=None, crt=None, key_passphrase=None, directory=ca_dir):
        if key is not None:
            write(os.path.join(directory, name + ".key"), key_pem(key, key_passphrase), 0o600)
        if crt is not None:
            write(os.path.join(directory, name + ".crt"), crt.public_bytes(serialization.Encoding.PEM), 0o644)

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = cert("Bad Input Root", root_key, path_length=2)
    put("root", root_key, root)
    put("root-enc", root_key, key_passphrase=passphrase)
    put("other", ec.generate_private_key(ec.SECP256R1()))

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    put("leaf", leaf_key, cert("not a CA", leaf_key, root, root_key, ca=False, not_after=NOW + 30 * DAY))

    exp_key = ec.generate_private_key(ec.SECP256R1())
    put("expired", exp_key, cert("Expired CA", exp_key, root, root_key, path_length=0, not_before=NOW - 30 * DAY, not_after=NOW - DAY))

    p0_key = ec.generate_private_key(ec.SECP256R1())
    put("pathlen0", p0_key, cert("Pathlen Zero CA", p0_key, root, root_key, path_length=0))

    short_key = ec.generate_private_key(ec.SECP256R1())
    put("short", short_key, cert("Short CA", short_key, root, root_key, path_length=1, not_after=NOW + 5 * DAY))

    nc_key = ec.generate_private_key(ec.SECP256R1())
    put("constrained", nc_key, cert("Constrained CA", nc_key, root, root_key, path_length=0, permitted_dns=["example.test"]))

    write(os.path.join(ca_dir, "garbage.pem"), b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGUgYXQgYWxs\n-----END CERTIFICATE-----\n", 0o644)
    write(os.path.join(ca_dir, "empty.pem"), b"", 0o644)

    ex_key = ec.generate_private_key(ec.SECP256R1())
    put("existing", ex_key, cert("existing", ex_key, root, root_key, ca=False, not_after=NOW + 30 * DAY), directory=out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
