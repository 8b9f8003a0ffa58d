"""mtls_exporter: certificate-expiry exporter of the zerotrust.mtls collection."""

__version__ = "0.1.0"
