"""A small, real mutual-TLS peer for the integration tests (standard library only).

Subcommands:
  serve    TLS server on 127.0.0.1 that requires a client certificate trusted by --ca.
           Writes its port and pid to --ready-file once listening, then answers each
           connection by echoing the bytes it receives prefixed with the client's CN.
           One JSON line per connection goes to --log (accepted CN or the TLS error).
  connect  TLS client: presents --cert/--key (optional), verifies the server against
           --ca and the host name, sends --message and expects the echo.
           Prints one JSON object; exit 0 accepted, 2 rejected by the peer, 1 other error.
  get      HTTPS GET with an optional client certificate; prints {"status": N, ...}.
  freeport Prints a free TCP port on 127.0.0.1.
"""

import argparse
import http.client
import json
import os
import socket
import ssl
import sys

HOST = "127.0.0.1"


def _cn(cert_dict):
    for rdn in (cert_dict or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def serve(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=args.ca)
    ctx.load_cert_chain(certfile=args.cert, keyfile=args.key)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, args.port))
    sock.listen(8)
    port = sock.getsockname()[1]
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as fh:
        json.dump({"port": port, "pid": os.getpid()}, fh)
    os.replace(tmp, args.ready_file)
    sock.settimeout(args.idle_timeout)
    served = 0
    with open(args.log, "a", buffering=1) as log:
        while args.max_conns == 0 or served < args.max_conns:
            try:
                raw, _addr = sock.accept()
            except socket.timeout:
                log.write(json.dumps({"event": "idle-timeout"}) + "\n")
                break
            served += 1
            raw.settimeout(10)
            try:
                with ctx.wrap_socket(raw, server_side=True) as tls:
                    peer = tls.getpeercert()
                    data = tls.recv(4096)
                    cn = _cn(peer)
                    tls.sendall(b"hello " + (cn or "?").encode() + b": " + data)
                    log.write(json.dumps({"event": "accepted", "client_cn": cn, "version": tls.version(), "bytes": len(data)}) + "\n")
            except (ssl.SSLError, OSError) as exc:
                log.write(json.dumps({"event": "rejected", "error": str(exc)}) + "\n")
                raw.close()
    sock.close()
    return 0


def _client_ctx(args):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.cert:
        ctx.load_cert_chain(certfile=args.cert, keyfile=args.key)
    return ctx


def connect(args):
    ctx = _client_ctx(args)
    result = {"handshake": None}
    try:
        with socket.create_connection((HOST, args.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=args.server_name) as tls:
                result["handshake"] = "completed"
                result["version"] = tls.version()
                result["server_cn"] = _cn(tls.getpeercert())
                tls.sendall(args.message.encode())
                # With TLS 1.3 the server judges the client certificate after the
                # client's Finished, so a rejection surfaces on the first read.
                reply = tls.recv(4096)
                if not reply:
                    raise ConnectionResetError("server closed the connection without a reply")
                result["reply"] = reply.decode(errors="replace")
                result["outcome"] = "accepted"
                print(json.dumps(result))
                return 0
    except ssl.SSLCertVerificationError as exc:
        # The client itself refused the server: a test failure, not a rejection.
        result.update(outcome="error", error="server certificate not trusted: %s" % exc)
        print(json.dumps(result))
        return 1
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as exc:
        result.update(outcome="rejected", error=str(exc))
        print(json.dumps(result))
        return 2
    except OSError as exc:
        result.update(outcome="error", error=str(exc))
        print(json.dumps(result))
        return 1


def get(args):
    ctx = _client_ctx(args)
    conn = http.client.HTTPSConnection(HOST, args.port, context=ctx, timeout=10)
    try:
        conn.request("GET", args.path, headers={"Host": args.server_name})
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        print(json.dumps({"status": resp.status, "body": body[:500]}))
        return 0
    except (ssl.SSLError, OSError) as exc:
        print(json.dumps({"status": None, "error": str(exc)}))
        return 1
    finally:
        conn.close()


def freeport(_args):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        print(sock.getsockname()[1])
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--ca", required=True, help="trust bundle for client certificates")
    p.add_argument("--cert", required=True, help="server certificate chain (leaf first)")
    p.add_argument("--key", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ready-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--max-conns", type=int, default=0)
    p.add_argument("--idle-timeout", type=float, default=120.0)
    p.set_defaults(func=serve)
    for name, func in (("connect", connect), ("get", get)):
        p = sub.add_parser(name)
        p.add_argument("--ca", required=True, help="trust bundle for the server")
        p.add_argument("--cert")
        p.add_argument("--key")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--server-name", default="localhost")
        p.add_argument("--message", default="ping")
        p.add_argument("--path", default="/")
        p.set_defaults(func=func)
    p = sub.add_parser("freeport")
    p.set_defaults(func=freeport)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
