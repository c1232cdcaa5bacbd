"""Exits with code 3 until the file given exists; then prints 'ready' and sleeps (a
worker whose database is not up yet)."""
import os
import sys
import time

if not os.path.exists(sys.argv[1]):
    print("not yet", flush=True)
    sys.exit(3)
print(f"ready {os.getpid()}", flush=True)
while True:
    time.sleep(1000)
