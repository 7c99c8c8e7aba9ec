#!/usr/bin/env python3
"""A TLS front for the loopback test servers: listens on 127.0.0.1, completes a TLS handshake
with each client using the certificate it is given, and relays the plain bytes to a server on
127.0.0.1 (the C++ HTTP or SMTP test server), so https and smtps are tested against the same
servers as http and smtp. With --starttls it first plays an SMTP server up to STARTTLS (the
greeting, EHLO offering STARTTLS, the go-ahead), upgrades, and then relays to the SMTP server
after swallowing that server's own greeting, which the client already had. It prints its
port on the first line of stdout and exits when its stdin closes, so a test that dies takes
it along. Only loopback is ever listened on or dialled.

usage: tls_terminator.py --cert server.pem --key server.key --target-port PORT [--starttls]
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


def read_line(sock):
    """One CRLF-terminated line, read a byte at a time so nothing after it is consumed."""
    line = b""
    while not line.endswith(b"\r\n"):
        byte = sock.recv(1)
        if not byte:
            return None
        line += byte
    return line


def smtp_until_starttls(connection):
    """Speaks SMTP until the client asks for STARTTLS; False when it never does."""
    connection.sendall(b"220 tls-front ESMTP\r\n")
    while True:
        line = read_line(connection)
        if line is None:
            return False
        verb = line.split(b" ")[0].strip().upper()
        if verb in (b"EHLO", b"HELO"):
            connection.sendall(b"250-tls-front\r\n250 STARTTLS\r\n")
        elif verb == b"STARTTLS":
            connection.sendall(b"220 2.0.0 ready to start TLS\r\n")
            return True
        elif verb == b"QUIT":
            connection.sendall(b"221 bye\r\n")
            return False
        else:
            connection.sendall(b"530 5.7.0 must issue a STARTTLS command first\r\n")


def serve(connection, context, target_port, starttls):
    # SMTP is a dialogue of short lines: without NODELAY each relayed line can wait for a
    # delayed acknowledgement (tens of milliseconds).
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if starttls and not smtp_until_starttls(connection):
        connection.close()
        return
    try:
        secure = context.wrap_socket(connection, server_side=True)
    except (ssl.SSLError, OSError):
        # The client refused the certificate (or spoke no TLS): nothing to relay.
        connection.close()
        return
    try:
        plain = socket.create_connection(("127.0.0.1", target_port))
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if starttls:
            read_line(plain)  # the SMTP server's greeting; the client had the front's
    except OSError:
        secure.close()
        return
    upstream = threading.Thread(target=relay, args=(secure, plain), daemon=True)
    upstream.start()
    relay(plain, secure)
    upstream.join()
    plain.close()
    secure.close()


def accept_loop(listener, context, target_port, starttls):
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(connection, context, target_port, starttls),
                         daemon=True).start()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--starttls", action="store_true")
    args = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    threading.Thread(target=accept_loop,
                     args=(listener, context, args.target_port, args.starttls),
                     daemon=True).start()
    sys.stdin.read()  # returns when the test closes our stdin or exits
    listener.close()


if __name__ == "__main__":
    main()
