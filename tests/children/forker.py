"""Forks a child that writes its pid to argv[1] and sleeps (its own session with
'setsid'), then the main process sleeps too. With 'hide-on-term' the child, on SIGTERM,
wipes its environment block (so /proc/PID/environ no longer shows the service marker, as
for a process in the middle of exiting) and takes 0.5 s to exit."""
import ctypes
import os
import signal
import sys
import time


def hide_and_linger(*_: object) -> None:
    with open(f"/proc/{os.getpid()}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    start, end = int(fields[47]), int(fields[48])  # env_start, env_end (stat fields 50, 51)
    ctypes.memset(start, 0, end - start)
    time.sleep(0.5)
    os._exit(0)


path = sys.argv[1]
pid = os.fork()
if pid == 0:
    if "setsid" in sys.argv:
        os.setsid()
    if "hide-on-term" in sys.argv:
        signal.signal(signal.SIGTERM, hide_and_linger)
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)
    while True:
        time.sleep(1000)
print(f"main {os.getpid()} forked {pid}", flush=True)
while True:
    time.sleep(1000)
