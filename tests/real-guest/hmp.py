#!/usr/bin/env python3
"""Sends monitor commands to QEMU's HMP on a unix socket.

  hmp.py SOCKET CMDFILE    one command per line; prints QEMU's replies

QEMU answers each command with its output and a new "(qemu) " prompt;
the script waits for that prompt (10 s at most) before the next command.
"""
import re
import socket
import sys
import time

# HMP's readline redraws the line with escape sequences as it echoes.
ESCAPES = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')


def until_prompt(s, deadline):
    buf = b''
    while not buf.endswith(b'(qemu) ') and time.time() < deadline:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors='replace')


def main():
    path, cmds = sys.argv[1], open(sys.argv[2]).read().splitlines()
    s = socket.socket(socket.AF_UNIX)
    for _ in range(100):
        try:
            s.connect(path)
            break
        except OSError:
            time.sleep(0.1)
    s.settimeout(0.5)
    until_prompt(s, time.time() + 10)
    for c in cmds:
        if not c.strip():
            continue
        s.sendall(c.encode() + b'\n')
        out = ESCAPES.sub('', until_prompt(s, time.time() + 10))
        # The echo is the first line; the rest is QEMU's reply.
        reply = '\n'.join(out.splitlines()[1:]).replace('(qemu) ', '').strip()
        print(f'hmp> {c}\n{reply}', flush=True)


if __name__ == '__main__':
    main()
