#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""One configfs operation; prints OK or the errno name (EINVAL, EEXIST, ...).

    cfsop.py write PATH VALUE | mkdir PATH | rmdir PATH | symlink TARGET LINK | read PATH
    cfsop.py fuzz ROOT   garbage into every writable file under ROOT (dbroot excepted),
                         then read every readable file; prints OK or the file that failed
"""
import errno, os, stat, sys

GARBAGE = [b"", b"abc", b"-1", b"18446744073709551616", b"x" * 5000, b"\x01\xff", b"1\n\n", b"NULL"]


def fuzz(root):
    for top, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(top, name)
            mode = os.stat(path).st_mode
            if mode & stat.S_IWUSR and name != "dbroot":
                for v in GARBAGE:
                    try:
                        fd = os.open(path, os.O_WRONLY)
                        try:
                            os.write(fd, v)
                        finally:
                            os.close(fd)
                    except OSError:
                        pass
    for top, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(top, name)
            if os.stat(path).st_mode & stat.S_IRUSR:
                try:
                    with open(path, "rb") as f:
                        f.read()
                except OSError as e:
                    if e.errno not in (errno.ENODEV, errno.EACCES):
                        return path
    return None

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
    elif op == "fuzz":
        bad = fuzz(args[0])
        if bad:
            print("FAILED " + bad)
            sys.exit(0)
    elif op == "read":
        with open(args[0], "rb") as f:
            f.read()
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
