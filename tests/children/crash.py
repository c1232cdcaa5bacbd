"""Prints its pid, then exits with the code given (after an optional delay)."""
import os
import sys
import time

print(f"pid {os.getpid()}", flush=True)
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
