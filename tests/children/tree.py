"""A chain of N processes (main -> child -> grandchild ...), all in the main's process
group, each printing 'pid P level L'. Options for the last one: 'leaf-burn' burns CPU;
'leaf-exit=S' exits after S seconds while the others live on (its parent reaps it);
'middle-exit': the leaf's parent exits at once, orphaning the leaf (N > 2)."""
import os
import sys
import time

n = int(sys.argv[1])
burn = "leaf-burn" in sys.argv
exit_after = next((float(a.split("=", 1)[1]) for a in sys.argv if a.startswith("leaf-exit=")),
                  None)
level = 1
while level < n:
    if os.fork():
        break
    level += 1
print(f"pid {os.getpid()} level {level}", flush=True)
if "middle-exit" in sys.argv and 1 < level == n - 1:
    os._exit(0)
if level == n:
    deadline = None if exit_after is None else time.monotonic() + exit_after
    while deadline is None or time.monotonic() < deadline:
        if not burn:
            time.sleep(0.05 if deadline else 1000)
    os._exit(0)
os.wait()  # the child (leaf) may exit: reap it, live on
while True:
    time.sleep(1000)
