"""The sync-marker scan shared by the record file, the sequence file and Avro."""
import io

from mapred.io import syncmarker
from mapred.io.syncmarker import find_sync

SYNC = bytes(range(16))


def test_a_marker_is_found_wherever_it_starts_before_the_limit(monkeypatch):
    monkeypatch.setattr(syncmarker, "SCAN_CHUNK", 7)      # markers straddle reads everywhere
    for at in range(60):
        data = b"\xff" * at + SYNC + b"\xff" * 20
        f = io.BytesIO(data)
        for pos in range(at + 2):
            for limit in (at, at + 1, at + 5, len(data)):
                want = at if pos <= at < limit else -1
                assert find_sync(f, SYNC, pos, limit) == want, (at, pos, limit)


def test_the_scan_goes_on_while_a_straddling_marker_could_start_before_the_limit(monkeypatch):
    """The record file's old copy stopped once it had read past the limit, missing a marker begun just before."""
    monkeypatch.setattr(syncmarker, "SCAN_CHUNK", 10)
    data = b"\xee" * 9 + SYNC + b"\xee" * 5             # the marker starts at 9, the first read ends at 10
    assert find_sync(io.BytesIO(data), SYNC, 0, 10) == 9
    assert find_sync(io.BytesIO(data), SYNC, 0, 9) == -1
    assert find_sync(io.BytesIO(b""), SYNC, 0, 10) == -1
