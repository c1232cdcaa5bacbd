"""Holds MB megabytes of touched memory (argv[1]), prints 'holding MB', sleeps; with
'grow' it takes 8 MB more every 0.1 s instead, for ever."""
import sys
import time

held = []
mb = int(sys.argv[1])
if "grow" in sys.argv:
    while True:
        held.append(bytearray(8 << 20))
        time.sleep(0.1)
held.append(bytearray(mb << 20))
print(f"holding {mb}", flush=True)
while True:
    time.sleep(1000)
