"""Writes `line 1` .. `line COUNT` and exits with CODE at once (os._exit: no teardown).

Options: `--split K` writes lines 1..K, waits 0.1 s, writes line K+1, waits 1 ms (the
engine reads it, and its reader pauses for 2 ms: output.PIPE_PAUSE), then writes the rest
in a burst right before dying; `--sleep S` sleeps S seconds (-1: forever) before exiting."""
import os
import sys
import time

args = sys.argv[1:]
count, code = int(args[0]), int(args[1])
opts = dict(zip(args[2::2], args[3::2], strict=True))
split = int(opts.get("--split", 0))
pause = float(opts.get("--sleep", 0))
for i in range(1, count + 1):
    os.write(1, f"line {i}\n".encode())
    if i == split:
        time.sleep(0.1)
    elif split and i == split + 1:
        time.sleep(0.001)
if pause < 0:
    while True:
        time.sleep(3600)
time.sleep(pause)
os._exit(code)
