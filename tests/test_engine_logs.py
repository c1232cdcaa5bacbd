"""Output capture: every line kept, in order, across rotation; long lines; bad UTF-8."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import child, spec, wait_for

from tui_supervisor.config.schema import LogSpec
from tui_supervisor.engine.events import LogLines
from tui_supervisor.engine.logs import MAX_LINE, LineSplitter, LogFile, decode_lines


def read_rotated(path: Path) -> list[str]:
    files = sorted(path.parent.glob(path.name + ".*"), key=lambda p: -int(p.suffix[1:]))
    out: list[str] = []
    for f in [*files, path]:
        out.extend(f.read_text().splitlines())
    return out


async def test_200k_fast_lines_complete_in_order_across_rotation(engine_factory,
                                                                 tmp_path: Path) -> None:
    n = 200_000
    sup = await engine_factory(spec("fast", child("counter", str(n)), tmp_path,
                                    restart="never",
                                    log=LogSpec(max_bytes=1 << 20, backups=50, ring_lines=500)))
    got: list[str] = []
    sup.bus.add_listener(lambda ev: got.extend(ev.lines) if isinstance(ev, LogLines) else None)
    svc = sup.services["fast"]
    await wait_for(lambda: svc.state.value == "exited" and not svc.pipes, timeout=60)
    expect = [f"line {i:08d} {'x' * 40}" for i in range(n)]
    assert got == expect
    on_disk = read_rotated(svc.log_file.path)
    assert on_disk == expect
    rotated = list(svc.log_file.path.parent.glob("fast.log.*"))
    assert len(rotated) >= 10
    assert all(f.stat().st_size <= 1 << 20 for f in rotated)
    assert svc.ring.next_seq == n + 1 and len(svc.ring.tail()) == 500


async def test_stdout_and_stderr_kept_apart(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("b", child("counter", "100", "0", "both"), tmp_path,
                                    restart="never"))
    svc = sup.services["b"]
    await wait_for(lambda: svc.state.value == "exited" and not svc.pipes)
    lines = svc.ring.tail()
    out = [t for _, _, s, t in lines if s == "stdout"]
    err = [t for _, _, s, t in lines if s == "stderr"]
    assert out == [f"line {i:08d} {'x' * 40}" for i in range(0, 100, 2)]
    assert err == [f"line {i:08d} {'x' * 40}" for i in range(1, 100, 2)]
    assert [seq for seq, *_ in lines] == list(range(1, 101))


async def test_long_line_split_and_bad_utf8_replaced(engine_factory, tmp_path: Path) -> None:
    script = ("import sys; w = sys.stdout.buffer.write; w(b'a' * 200000 + b'\\n');"
              "w(b'ok \\xff\\xfe end\\n'); w(b'no newline at end')")
    sup = await engine_factory(spec("l", (child("crash")[0], "-c", script), tmp_path,
                                    restart="never"))
    svc = sup.services["l"]
    await wait_for(lambda: svc.state.value == "exited" and not svc.pipes)
    texts = [t for *_, t in svc.ring.tail()]
    assert [len(t) for t in texts[:4]] == [MAX_LINE, MAX_LINE, MAX_LINE, 200000 - 3 * MAX_LINE]
    assert texts[4] == "ok \ufffd\ufffd end"
    assert texts[5] == "no newline at end"
    assert len(texts) == 6


def test_splitter_keeps_partial_lines_and_utf8_sequences() -> None:
    sp = LineSplitter()
    assert sp.feed(b"hel") == (b"", 0)
    assert sp.feed(b"lo\nwor") == (b"hello\n", 1)
    euro = "€".encode()
    assert sp.feed(b"ld " + euro[:1]) == (b"", 0)
    assert sp.feed(euro[1:] + b"\n\n") == (b"world \xe2\x82\xac\n\n", 2)
    assert decode_lines(b"world \xe2\x82\xac\n\n") == ["world €", ""]
    assert sp.flush() == (b"", 0)
    # a multi-byte char straddling the 64 KiB cut is not broken
    data = b"a" * (MAX_LINE - 1) + euro + b"\n"
    raw, n = LineSplitter().feed(data)
    assert decode_lines(raw) == ["a" * (MAX_LINE - 1), "€"] and n == 2
    assert raw == b"a" * (MAX_LINE - 1) + b"\n" + euro + b"\n"


def test_splitter_finds_a_long_line_anywhere_in_a_chunk() -> None:
    for before in (0, 1, 1000, MAX_LINE // 2 + 7, 3 * MAX_LINE):
        short = b"s\n" * (before // 2)
        data = short + b"L" * (MAX_LINE + 10) + b"\n" + b"t\n" * 5
        raw, n = LineSplitter().feed(data)
        lines = decode_lines(raw)
        assert max(map(len, lines)) == MAX_LINE and n == len(lines) == before // 2 + 2 + 5
        assert "".join(lines).count("L") == MAX_LINE + 10


def test_logfile_rotates_at_line_boundaries(tmp_path: Path) -> None:
    f = LogFile(tmp_path / "x.log", max_bytes=25, backups=2)
    for i in range(10):
        f.write(f"line {i}\n".encode() * 2)  # 14 bytes
    f.close()
    files = [tmp_path / "x.log.2", tmp_path / "x.log.1", tmp_path / "x.log"]
    contents = [p.read_text() for p in files]
    assert all(len(c) <= 25 for c in contents)
    assert all(c.endswith("\n") for c in contents if c)
    joined = "".join(contents).splitlines()
    full = [f"line {i}" for i in range(10) for _ in range(2)]
    assert len(joined) >= 6 and joined == full[-len(joined):]  # newest, contiguous, no dups
    assert not (tmp_path / "x.log.3").exists()
    assert os.path.getsize(tmp_path / "x.log") <= 25


def test_ring_keeps_the_last_lines_across_chunks() -> None:
    from tui_supervisor.engine.logs import LogRing

    def put(ring: LogRing, t: float, stream: str, texts: list[str]) -> int:
        return ring.extend(t, stream, "".join(x + "\n" for x in texts).encode(), len(texts))

    ring = LogRing(5)
    assert put(ring, 1.0, "stdout", ["a", "b", "c"]) == 1
    assert put(ring, 2.0, "stderr", ["d", "e", "f", "g"]) == 4
    assert [(s, st, x) for s, _, st, x in ring.tail()] == [
        (3, "stdout", "c"), (4, "stderr", "d"), (5, "stderr", "e"), (6, "stderr", "f"),
        (7, "stderr", "g")]
    assert [x for *_, x in ring.tail(2)] == ["f", "g"]
    assert put(ring, 3.0, "stdout", [str(i) for i in range(100)]) == 8
    assert [s for s, *_ in ring.tail()] == [103, 104, 105, 106, 107]
    copy = LogRing(5, ring.tail(), ring.next_seq)  # as after a handoff
    assert copy.tail() == ring.tail() and copy.next_seq == 108
    copy.resize(2)
    assert [x for *_, x in copy.tail()] == ["98", "99"] and len(copy) == 2
