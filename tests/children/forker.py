"""Forks a child that writes its pid to argv[1] and sleeps (its own session with
'setsid'), then the main process sleeps too."""
import os
import sys
import time

path = sys.argv[1]
pid = os.fork()
if pid == 0:
    if "setsid" in sys.argv:
        os.setsid()
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)
    while True:
        time.sleep(1000)
print(f"main {os.getpid()} forked {pid}", flush=True)
while True:
    time.sleep(1000)
