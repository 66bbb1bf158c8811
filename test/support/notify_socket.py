#!/usr/bin/env python3
"""A stand-in for systemd's notify socket in tests: binds an AF_UNIX datagram socket at the path
given, and prints one JSON line per datagram received: the sender's pid, as the kernel reports it
(SO_PASSCRED, as systemd reads it to attribute a message to a unit's main process), and the text.
Prints {"listening": path} once bound. Runs until killed."""
import json
import socket
import struct
import sys

path = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
sock.bind(path)
print(json.dumps({"listening": path}), flush=True)
creds_size = struct.calcsize("3i")
while True:
    data, ancillary, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(creds_size))
    pid = None
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, _uid, _gid = struct.unpack("3i", value[:creds_size])
    print(json.dumps({"pid": pid, "message": data.decode()}), flush=True)
