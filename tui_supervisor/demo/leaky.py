"""Demo: a service whose memory grows slowly (about 200 KB/s, reset at 64 MB)."""

import time


def main() -> None:
    hoard: list[bytes] = []
    while True:
        hoard.append(b"x" * 200_000)
        if len(hoard) * 200_000 >= 64 << 20:
            print("cache full: flushing", flush=True)
            hoard.clear()
        if len(hoard) % 30 == 0:
            print(f"cache holds {len(hoard) * 200_000 / 1e6:.1f} MB", flush=True)
        time.sleep(1.0)


if __name__ == "__main__":
    main()
