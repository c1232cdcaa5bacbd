"""A badly behaved service (bench/chaos_scenarios.py, `hostile`): prints 'ready PID', then
with 'close-output' closes its stdout and stderr; with 'huge-line=N' prints one line of N
bytes (and its newline); then sleeps for ever."""
import os
import sys
import time

print(f"ready {os.getpid()}", flush=True)
if "close-output" in sys.argv:
    os.close(1)
    os.close(2)
for arg in sys.argv[1:]:
    if arg.startswith("huge-line="):
        n = int(arg.split("=", 1)[1])
        data = b"y" * n + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]
while True:
    time.sleep(1000)
