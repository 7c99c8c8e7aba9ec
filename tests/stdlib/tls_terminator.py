#!/usr/bin/env python3
"""A TLS front for the loopback test servers: listens on 127.0.0.1, completes a TLS handshake
with each client using the certificate it is given, and relays the plain bytes to a server on
127.0.0.1 (the C++ HTTP or SMTP test server), so https and smtps are tested against the same
servers as http and smtp. It prints its port on the first line of stdout and exits when its
stdin closes, so a test that dies takes it along. Only loopback is ever listened on or dialled.

usage: tls_terminator.py --cert server.pem --key server.key --target-port PORT
"""

import argparse
import socket
import ssl
import sys
import threading


def relay(source, target):
    """Copies bytes from source to target until either side closes."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(connection, context, target_port):
    # SMTP is a dialogue of short lines: without NODELAY each relayed line can wait for a
    # delayed acknowledgement (tens of milliseconds).
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        secure = context.wrap_socket(connection, server_side=True)
    except (ssl.SSLError, OSError):
        # The client refused the certificate (or spoke no TLS): nothing to relay.
        connection.close()
        return
    try:
        plain = socket.create_connection(("127.0.0.1", target_port))
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        secure.close()
        return
    upstream = threading.Thread(target=relay, args=(secure, plain), daemon=True)
    upstream.start()
    relay(plain, secure)
    upstream.join()
    plain.close()
    secure.close()


def accept_loop(listener, context, target_port):
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(connection, context, target_port),
                         daemon=True).start()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--target-port", type=int, required=True)
    args = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    threading.Thread(target=accept_loop, args=(listener, context, args.target_port),
                     daemon=True).start()
    sys.stdin.read()  # returns when the test closes our stdin or exits
    listener.close()


if __name__ == "__main__":
    main()
