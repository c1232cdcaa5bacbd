"""Prints 'ready' and sleeps; with 'ignore-term' it ignores SIGTERM."""
import os
import signal
import sys
import time

if "ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(f"ready {os.getpid()}", flush=True)
while True:
    time.sleep(1000)
