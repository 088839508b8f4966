#!/usr/bin/env python3
"""Minimal syslog sink used by benches/run.sh.

Binds a Unix datagram socket (the benchmark binds it at /dev/log inside a private
mount namespace), makes it writable by everyone like a real /dev/log, writes
READY_FILE once it is listening, then appends every datagram it receives as one
line to LOG_FILE until it gets SIGTERM/SIGINT.

It plays the part of rsyslogd/journald so that every tool under test (sudo,
sudo-rs, doas, jitsudo) pays the real cost of logging each invocation.

usage: syslog_sink.py SOCKET_PATH LOG_FILE READY_FILE
"""
import os
import signal
import socket
import sys


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    sock_path, log_path, ready_path = sys.argv[1:]

    stop = False

    def on_signal(_signo, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    # A generous receive buffer so senders never block on us.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(sock_path)
    os.chmod(sock_path, 0o666)
    sock.settimeout(0.2)

    with open(log_path, "ab", buffering=0) as log:
        with open(ready_path, "w") as ready:
            ready.write(str(os.getpid()))
        while not stop:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            except InterruptedError:
                continue
            # One record per line; keep embedded newlines visible.
            log.write(data.rstrip(b"\n").replace(b"\n", b"\\n") + b"\n")
    sock.close()
    try:
        os.unlink(sock_path)
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
