"""`Spool`: batches on disk, oldest first, bounded in bytes, surviving a reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmonia.sdk._spool import Spool, _encode
from harmonia.sdk._wire import Batch


def batch(seq: int, count: int = 3, *, key: str | None = None) -> Batch:
    samples = [{"model": "svm", "ts": float(seq * 100 + i), "metrics": {}} for i in range(count)]
    return Batch(seq, "traffic", "edge-1", key or f"key-{seq}", samples)


class Losses:
    """Records what the spool reports lost."""

    def __init__(self) -> None:
        self.lost: list[tuple[int, str]] = []

    def __call__(self, count: int, reason: str) -> None:
        self.lost.append((count, reason))

    @property
    def samples(self) -> int:
        return sum(count for count, _ in self.lost)


@pytest.fixture
def losses() -> Losses:
    return Losses()


def test_batches_come_back_oldest_first_with_their_keys(tmp_path: Path, losses: Losses) -> None:
    spool = Spool(tmp_path, 10_000, losses)
    for seq in (4, 2, 7):
        assert spool.put(batch(seq))
    assert (len(spool), spool.samples) == (3, 9)
    assert spool.oldest() == batch(2)
    spool.remove(2)
    assert spool.oldest() == batch(4)
    spool.remove(4)
    spool.remove(7)
    assert spool.oldest() is None and spool.size == 0 and not list(tmp_path.iterdir())
    assert losses.lost == []


def test_a_reopened_spool_holds_the_previous_runs_batches(tmp_path: Path, losses: Losses) -> None:
    first = Spool(tmp_path, 10_000, losses)
    first.put(batch(0, key="a1"))
    first.put(batch(1, key="b2"))
    again = Spool(tmp_path, 10_000, losses)
    assert len(again) == 2 and again.size == first.size
    assert again.oldest() == batch(0, key="a1")
    assert again.next_seq == 2  # batches formed now sort after the ones on disk
    assert Spool(tmp_path / "empty", 10_000, losses).next_seq == 0


def test_a_full_spool_deletes_its_oldest_batches_and_reports_them(
    tmp_path: Path, losses: Losses
) -> None:
    size = len(_encode(batch(0)))
    spool = Spool(tmp_path, int(size * 2.5), losses)
    for seq in range(4):
        assert spool.put(batch(seq))
    assert sorted(spool._entries) == [2, 3]
    assert losses.samples == 6 and "full" in losses.lost[0][1]
    assert spool.size <= spool.max_bytes


def test_the_batch_being_sent_is_never_deleted_to_make_room(tmp_path: Path, losses: Losses) -> None:
    size = len(_encode(batch(0)))
    spool = Spool(tmp_path, int(size * 2.5), losses)
    spool.put(batch(0))
    spool.put(batch(1))
    assert spool.put(batch(2), keep=0)
    assert sorted(spool._entries) == [0, 2]


def test_a_batch_that_cannot_fit_is_refused_and_reported(tmp_path: Path, losses: Losses) -> None:
    size = len(_encode(batch(0)))
    spool = Spool(tmp_path, int(size * 1.5), losses)
    spool.put(batch(0))
    assert not spool.put(batch(1), keep=0)  # the only room would be batch 0's
    assert not spool.put(batch(2, count=50))  # bigger than the whole spool
    assert losses.samples == 53 and sorted(spool._entries) == [0]


def test_an_unreadable_file_is_deleted_and_reported_not_stuck(
    tmp_path: Path, losses: Losses
) -> None:
    spool = Spool(tmp_path, 10_000, losses)
    spool.put(batch(0))
    spool.put(batch(1))
    (tmp_path / f"{0:016d}-3.json").write_bytes(b'{"app": "traffic", "samp')
    assert spool.oldest() == batch(1)
    assert losses.samples == 3 and "unreadable" in losses.lost[0][1]


def test_an_interrupted_write_is_cleared_and_strangers_are_ignored(
    tmp_path: Path, losses: Losses
) -> None:
    (tmp_path / f".{3:016d}-3.json.tmp").write_bytes(b'{"app": "tr')
    (tmp_path / "notes.txt").write_text("mine")
    spool = Spool(tmp_path, 10_000, losses)
    assert len(spool) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_failing_disk_costs_the_batch_not_the_probe(tmp_path: Path, losses: Losses) -> None:
    spool = Spool(tmp_path / "spool", 10_000, losses)
    (tmp_path / "spool").rename(tmp_path / "gone")
    assert not spool.put(batch(0))
    assert losses.samples == 3 and "cannot write" in losses.lost[0][1]
    assert len(spool) == 0
