"""Classic double fork: the grandchild writes its pid to argv[1] and lives on; the
intermediate child and the main process exit 0."""
import os
import sys
import time

path = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(path + ".tmp", path)
        print("daemon running", flush=True)
        while True:
            time.sleep(1000)
    os._exit(0)
os.wait()
while not os.path.exists(path):
    time.sleep(0.01)
print("parent exits", flush=True)
sys.exit(0)
