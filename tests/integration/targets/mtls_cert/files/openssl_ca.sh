#!/bin/sh
# Makes a root and an intermediate CA with the openssl CLI (not with this collection),
# so that mtls_cert is tested against CAs it did not make itself.
#   openssl_ca.sh DIR PREFIX [INTERMEDIATE_PASSPHRASE]
# writes DIR/PREFIX-root.crt, -root.key, -int.crt, -int.key (encrypted when a passphrase
# is given), -chain.pem (intermediate + root).
set -eu
dir=$1 prefix=$2 pass=${3:-}
umask 077
cd "$dir"
cat > "$prefix-ext.cnf" <<CNF
[int]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$prefix-root.key" 2>/dev/null
openssl req -x509 -new -key "$prefix-root.key" -subj "/O=openssl/CN=$prefix root" -days 365 \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:1" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$prefix-root.crt"
if [ -n "$pass" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-256-cbc -pass "pass:$pass" -out "$prefix-int.key"
  passin="-passin pass:$pass"
else
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$prefix-int.key"
  passin=""
fi
# shellcheck disable=SC2086
openssl req -new -key "$prefix-int.key" $passin -subj "/O=openssl/CN=$prefix intermediate" -out "$prefix-int.csr"
openssl x509 -req -in "$prefix-int.csr" -CA "$prefix-root.crt" -CAkey "$prefix-root.key" -CAcreateserial \
  -days 180 -extfile "$prefix-ext.cnf" -extensions int -out "$prefix-int.crt" 2>/dev/null
cat "$prefix-int.crt" "$prefix-root.crt" > "$prefix-chain.pem"
rm -f "$prefix-int.csr" "$prefix-root.srl" "$prefix-ext.cnf"
chmod 0644 "$prefix-root.crt" "$prefix-int.crt" "$prefix-chain.pem"
openssl verify -x509_strict -CAfile "$prefix-root.crt" "$prefix-int.crt" >/dev/null
