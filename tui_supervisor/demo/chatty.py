"""Demo: a chatty service logging several lines a second, some in colour, some on stderr."""

import itertools
import random
import sys
import time

LEVELS = (("INFO", "\x1b[32m"), ("DEBUG", "\x1b[36m"), ("WARN", "\x1b[33m"))
PATHS = ("/", "/api/items", "/api/users/42", "/healthz", "/static/app.js")


def main() -> None:
    rng = random.Random()
    for n in itertools.count(1):
        level, color = rng.choice(LEVELS)
        path = rng.choice(PATHS)
        print(f"{color}{level}\x1b[0m request {n} GET {path} {rng.randint(1, 80)}ms", flush=True)
        if n % 25 == 0:
            print(f"ERROR request {n}: upstream timed out", file=sys.stderr, flush=True)
        time.sleep(rng.uniform(0.1, 0.5))


if __name__ == "__main__":
    main()
