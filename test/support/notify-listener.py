#!/usr/bin/env python3
"""A minimal service manager for the notify protocol (sd_notify(3)), for tests.

    notify-listener.py SOCKET [CONTROL_SOCKET]

Binds SOCKET (a path, or '@name' in the abstract namespace) as an AF_UNIX datagram
socket, prints 'listening' once bound, then one JSON line per datagram received:
{"msg": "READY=1\\nSTATUS=...", "control": ...}. When a datagram holds READY=1 and
CONTROL_SOCKET is given, it asks the daemon's control socket for its status at once,
before reading the next datagram, and reports the answer's "ok" (or the error):
a READY=1 sent before the control socket answers shows up as a refused connection.
Runs until killed.
"""
import json
import socket
import sys


def ask_status(path):
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(path)
            s.sendall(b'{"id":1,"command":"status"}\n')
            data = b""
            while b"\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            answer = json.loads(data.split(b"\n", 1)[0])
            return {"ok": answer.get("ok"), "state": answer.get("result", {}).get("daemon", {}).get("state")}
    except Exception as e:  # what the test reports: the READY=1 came too early
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    path = sys.argv[1]
    control = sys.argv[2] if len(sys.argv) > 2 else None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + path[1:] if path.startswith("@") else path)
    print("listening", flush=True)
    while True:
        msg = sock.recv(65536).decode("utf-8", "replace")
        line = {"msg": msg}
        if control and "READY=1" in msg.split("\n"):
            line["control"] = ask_status(control)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
