#!/usr/bin/python3
# notify_listen.py SOCK LOG: a NOTIFY_SOCKET (datagrams, sender credentials) that writes
# every sd_notify line to LOG as "<seconds since start> <sender pid> <line>". The socket
# is world-writable so that a daemon running as another user can reach it.
import os, socket, struct, sys, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
os.chmod(path, 0o666)
t0 = time.monotonic()
with open(out, "a", buffering=1) as f:
    while True:
        data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(12))
        pid = -1
        for level, kind, d in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", d[:12])[0]
        for line in data.decode("utf-8", "replace").split("\n"):
            if line:
                f.write("%.3f %d %s\n" % (time.monotonic() - t0, pid, line))
