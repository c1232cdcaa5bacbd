"""Demo: a queue worker that crashes now and then."""

import random
import sys
import time


def main() -> None:
    rng = random.Random()
    job = 0
    print("worker ready", flush=True)
    while True:
        time.sleep(rng.uniform(0.5, 2.0))
        job += 1
        print(f"job {job} done in {rng.uniform(5, 250):.0f} ms", flush=True)
        if rng.random() < 0.02:
            print(f"job {job + 1}: unexpected error, giving up", file=sys.stderr, flush=True)
            sys.exit(3)


if __name__ == "__main__":
    main()
