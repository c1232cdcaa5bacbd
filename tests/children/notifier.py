"""A Type=notify daemon written for systemd, sending real sd_notify datagrams:
`notifier.py STOPFILE`. READY=1 after a moment, then WATCHDOG=1 every WATCHDOG_USEC/2
until the file STOPFILE exists (then it hangs on, silent: a missed watchdog)."""

import os
import socket
import sys
import time


def notify(text: str) -> None:
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(text.encode(), addr)


time.sleep(0.3)
notify("STATUS=warming up")
notify("READY=1\nSTATUS=serving")
print(f"ready; watchdog {os.environ.get('WATCHDOG_USEC')}", flush=True)
every = int(os.environ.get("WATCHDOG_USEC", "1000000")) / 2e6
while True:
    if not os.path.exists(sys.argv[1]):
        notify("WATCHDOG=1")
    time.sleep(every)
