"""The logging service of the throughput benchmark (run by the supervisor under test).

    writer.py chunks|lines TOTAL_BYTES GO_FIFO TIMES_FILE [CPU]

With CPU, pins itself to that CPU. Waits until the bench releases GO_FIFO, writes
"start <monotonic>" to TIMES_FILE, writes TOTAL_BYTES to stdout, writes "end <monotonic>",
then idles. `chunks`: 64 KiB writes, each 64 lines of 1 KiB. `lines`: one write per
100-byte line "<9-digit seq>-----...\\n".
"""

from __future__ import annotations

import os
import sys
import time

CHUNK = 65536
LINE = 100


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


def main() -> None:
    mode, total, go, times = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if len(sys.argv) > 5:
        os.sched_setaffinity(0, {int(sys.argv[5])})
    filler = b"-" * (LINE - 10) + b"\n"
    chunk = (b"x" * 1023 + b"\n") * (CHUNK // 1024)
    with open(go, "rb") as f:  # blocks until the bench opens it for writing
        f.read()
    with open(times, "a") as f:
        f.write(f"start {time.monotonic()}\n")
    if mode == "chunks":
        for _ in range(total // CHUNK):
            _write_all(chunk)
    else:
        write = os.write
        for i in range(total // LINE):
            line = b"%09d" % i + filler
            if write(1, line) != LINE:
                raise SystemExit("short write")
    with open(times, "a") as f:
        f.write(f"end {time.monotonic()}\n")
    time.sleep(10**6)


if __name__ == "__main__":
    main()
