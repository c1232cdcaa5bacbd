"""Output capture: every line kept, in order, across rotation; long lines; bad UTF-8."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import child, make_config, spec, wait_for

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
    await wait_for(lambda: svc.state.value == "completed" and not svc.pipes, timeout=60)
    expect = [f"line {i:08d} {'x' * 40}" for i in range(n)]
    assert got == expect
    on_disk = read_rotated(svc.log_file.path)
    assert on_disk == expect
    rotated = list(svc.log_file.path.parent.glob("fast.log.*"))
    assert len(rotated) >= 10
    assert all(f.stat().st_size <= 1 << 20 for f in rotated)
    assert svc.ring.next_offset == n * 55 and len(svc.ring.tail()) == 500


async def test_stdout_and_stderr_kept_apart(engine_factory, tmp_path: Path) -> None:
    sup = await engine_factory(spec("b", child("counter", "100", "0", "both"), tmp_path,
                                    restart="never"))
    svc = sup.services["b"]
    await wait_for(lambda: svc.state.value == "completed" and not svc.pipes)
    lines = svc.ring.tail()
    out = [t for _, _, s, t in lines if s == "stdout"]
    err = [t for _, _, s, t in lines if s == "stderr"]
    assert out == [f"line {i:08d} {'x' * 40}" for i in range(0, 100, 2)]
    assert err == [f"line {i:08d} {'x' * 40}" for i in range(1, 100, 2)]
    assert [off for off, *_ in lines] == list(range(0, 100 * 55, 55))


async def test_long_line_split_and_bad_utf8_replaced(engine_factory, tmp_path: Path) -> None:
    script = ("import sys; w = sys.stdout.buffer.write; w(b'a' * 200000 + b'\\n');"
              "w(b'ok \\xff\\xfe end\\n'); w(b'no newline at end')")
    sup = await engine_factory(spec("l", (child("crash")[0], "-c", script), tmp_path,
                                    restart="never"))
    svc = sup.services["l"]
    await wait_for(lambda: svc.state.value == "completed" and not svc.pipes)
    texts = [t for *_, t in svc.ring.tail()]
    assert [len(t) for t in texts[:4]] == [MAX_LINE, MAX_LINE, MAX_LINE, 200000 - 3 * MAX_LINE]
    assert texts[4] == "ok \ufffd\ufffd end"
    assert texts[5] == "no newline at end"
    assert len(texts) == 6


def feed(sp: LineSplitter, data: bytes) -> bytes:
    segments, size = sp.feed(data)
    raw = b"".join(segments)
    assert len(raw) == size and (raw == b"" or raw.endswith(b"\n"))
    return raw


def test_splitter_keeps_partial_lines_and_utf8_sequences() -> None:
    sp = LineSplitter()
    assert feed(sp, b"hel") == b""
    assert feed(sp, b"lo\nwor") == b"hello\n"
    euro = "€".encode()
    assert feed(sp, b"ld " + euro[:1]) == b""
    assert feed(sp, euro[1:] + b"\n\n") == b"world \xe2\x82\xac\n\n"
    assert decode_lines([b"world \xe2\x82\xac\n\n"]) == ["world €", ""]
    assert sp.flush() == ([], 0)
    assert feed(sp, b"a\nb\nc") == b"a\nb\n" and sp.flush() == ([b"c\n"], 2)
    # a multi-byte char straddling the 64 KiB cut is not broken
    raw = feed(LineSplitter(), b"a" * (MAX_LINE - 1) + euro + b"\n")
    assert decode_lines([raw]) == ["a" * (MAX_LINE - 1), "€"]
    assert raw == b"a" * (MAX_LINE - 1) + b"\n" + euro + b"\n"


def test_splitter_is_exact_whatever_the_read_sizes() -> None:
    import random

    rng = random.Random(7)
    lines = [b"x" * rng.choice([0, 1, 5, 80, 1000, 40_000, 70_000, 200_000])
             for _ in range(300)]
    stream = b"".join(line + b"\n" for line in lines)
    for sizes in ([1 << 20], [65536], [4096], [7, 13, 100_000, 3]):
        sp, out, pos, i = LineSplitter(), [], 0, 0
        while pos < len(stream):
            n = sizes[i % len(sizes)]
            out.append(feed(sp, stream[pos:pos + n]))
            pos, i = pos + n, i + 1
        got = b"".join(out).split(b"\n")[:-1]
        assert all(len(x) <= MAX_LINE for x in got)
        assert b"".join(got) == b"".join(lines)  # nothing lost, nothing added
        assert len(got) == sum(max(1, -(-len(x) // MAX_LINE)) for x in lines)


def test_splitter_finds_a_long_line_anywhere_in_a_chunk() -> None:
    for before in (0, 1, 1000, MAX_LINE // 2 + 7, 3 * MAX_LINE):
        short = b"s\n" * (before // 2)
        data = short + b"L" * (MAX_LINE + 10) + b"\n" + b"t\n" * 5
        lines = decode_lines([feed(LineSplitter(), data)])
        assert max(map(len, lines)) == MAX_LINE and len(lines) == before // 2 + 2 + 5
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
        raw = "".join(x + "\n" for x in texts).encode()
        return ring.add(t, stream, [memoryview(raw)], len(raw))

    ring = LogRing(5)
    assert put(ring, 1.0, "stdout", ["a", "b", "c"]) == 0
    assert put(ring, 2.0, "stderr", ["d", "e", "f", "g"]) == 6
    assert [(o, st, x) for o, _, st, x in ring.tail()] == [
        (4, "stdout", "c"), (6, "stderr", "d"), (8, "stderr", "e"), (10, "stderr", "f"),
        (12, "stderr", "g")]
    assert [x for *_, x in ring.tail(2)] == ["f", "g"]
    assert put(ring, 3.0, "stdout", [str(i) for i in range(100)]) == 14
    assert [x for *_, x in ring.tail()] == ["95", "96", "97", "98", "99"]
    copy = LogRing(5, ring.tail(), ring.next_offset)  # as after a handoff
    assert copy.tail() == ring.tail() and copy.next_offset == ring.next_offset
    copy.resize(2)
    assert [x for *_, x in copy.tail()] == ["98", "99"]


async def test_only_big_pipes_are_read_in_batches(engine_factory, tmp_path: Path,
                                                  monkeypatch) -> None:
    """Resting a pipe 2 ms between small reads is safe only if it can hold what a service
    writes meanwhile: a 64 KiB pipe would stall the service."""
    from tui_supervisor.engine import proc

    sup = await engine_factory(spec("big", child("sleeper"), tmp_path))
    big = sup.services["big"]
    assert big.pipes and set(big.pipes) == big._pausable
    assert all(proc.pipe_size(fd) >= 1 << 20 for fd in big.pipes)
    monkeypatch.setattr(proc, "PIPE_SIZE", 1 << 16)
    await sup.apply_config(make_config(tmp_path, spec("small", child("sleeper"), tmp_path),
                                       config_id=sup.config.config_id))
    small = sup.services["small"]
    assert small.pipes and not small._pausable


def test_a_failed_rotation_loses_no_line_and_writes_nowhere_else(tmp_path: Path) -> None:
    """The rename fails (a non-empty directory where name.log.1 goes): every line stays
    in name.log, and nothing goes to the fd number the closed file had (a pipe opened
    right after gets it)."""
    import pytest

    path = tmp_path / "s.log"
    (tmp_path / "s.log.1").mkdir()
    (tmp_path / "s.log.1" / "x").write_text("x")
    lf = LogFile(path, max_bytes=100, backups=1)
    lines = [f"line {i:04d}\n".encode() for i in range(50)]
    pipe = None
    for i, line in enumerate(lines):
        lf.write(line)
        if i == 12:  # the first rotation has failed: a new fd may reuse the closed number
            assert lf.rotate_error is not None and "directory" in lf.rotate_error.lower()
            pipe = os.pipe()
    lf.close()
    assert path.read_bytes() == b"".join(lines)
    assert pipe is not None
    os.set_blocking(pipe[0], False)
    with pytest.raises(BlockingIOError):
        os.read(pipe[0], 100)
    os.close(pipe[0])
    os.close(pipe[1])


async def test_a_failed_rotation_is_a_notice(engine_factory, tmp_path: Path) -> None:
    from tui_supervisor.engine.events import Notice

    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "logs" / "s.log.1").mkdir()
    (tmp_path / "logs" / "s.log.1" / "x").write_text("x")
    sup = await engine_factory(spec("s", child("counter", "200"), tmp_path, restart="never",
                                    log=LogSpec(max_bytes=1000, backups=1, ring_lines=10)))
    notes: list[str] = []
    sup.bus.add_listener(lambda ev: notes.append(ev.message) if isinstance(ev, Notice)
                         else None)
    svc = sup.services["s"]
    await wait_for(lambda: svc.state.value == "completed" and not svc.pipes, timeout=30)
    assert any(n.startswith(f"cannot rotate {svc.log_file.path}: ") for n in notes), notes
    lines = svc.log_file.path.read_text().splitlines()
    assert [int(x.split()[1]) for x in lines] == list(range(200))
