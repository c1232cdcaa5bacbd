"""A badly behaved service (bench/chaos_scenarios.py): prints 'ready PID', then
- 'close-output': closes its stdout and stderr;
- 'huge-line=N': prints one line of N bytes (and its newline);
- 'ghost=PATH': double-forks a grandchild into its own session that wipes its environment
  block (no service marker left to find it by) and writes its pid to PATH;
then sleeps for ever."""
import ctypes
import os
import sys
import time


def wipe_environ() -> None:
    with open(f"/proc/{os.getpid()}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    start, end = int(fields[47]), int(fields[48])  # env_start, env_end (stat fields 50, 51)
    ctypes.memset(start, 0, end - start)


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
    if arg.startswith("ghost="):
        path = arg.split("=", 1)[1]
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                wipe_environ()
                with open(path + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.rename(path + ".tmp", path)
                while True:
                    time.sleep(1000)
            os._exit(0)
        os.wait()
while True:
    time.sleep(1000)
