#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""One configfs operation; prints OK or the errno name (EINVAL, EEXIST, ...).

    cfsop.py write PATH VALUE | mkdir PATH | rmdir PATH | symlink TARGET LINK | read PATH
"""
import errno, os, sys

op, args = sys.argv[1], sys.argv[2:]
try:
    if op == "write":
        fd = os.open(args[0], os.O_WRONLY)
        try:
            os.write(fd, os.fsencode(args[1]))
        finally:
            os.close(fd)
    elif op == "mkdir":
        os.mkdir(args[0])
    elif op == "rmdir":
        os.rmdir(args[0])
    elif op == "symlink":
        os.symlink(args[0], args[1])
    elif op == "read":
        with open(args[0], "rb") as f:
            f.read()
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
