module zerotrust.mtls/tests/cluster/x509verify

go 1.22
