"""Prints numbered lines: count N as fast as possible, or every `interval` seconds for
ever. Half of them to stderr with 'both'."""
import sys
import time

n = int(sys.argv[1])
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
both = "both" in sys.argv
out = sys.stdout
i = 0
while n <= 0 or i < n:
    stream = sys.stderr if both and i % 2 else out
    stream.write(f"line {i:08d} {'x' * 40}\n")
    if interval:
        stream.flush()
        time.sleep(interval)
    i += 1
out.flush()
