"""The line rule: any text, any split size → every line read exactly once, keyed by its byte offset."""
import os

from hypothesis import given, settings, strategies as st

from mapred.io.inputs import SplitReader, plan_splits
from mapred.testing import text_strategy


def expected_lines(data: bytes):
    out, offset = [], 0
    for raw in data.split(b"\n"):
        if offset >= len(data):
            break
        line = raw.decode("utf-8")
        out.append((offset, line[:-1] if line.endswith("\r") else line))
        offset += len(raw) + 1
    return out


@settings(max_examples=200, deadline=None)
@given(text=text_strategy(), split_size=st.integers(1, 64))
def test_every_line_read_exactly_once(tmp_path_factory, text, split_size):
    path = os.path.join(str(tmp_path_factory.mktemp("split")), "in.txt")
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    splits = plan_splits([path], split_size)
    got = [rec for s in splits for rec in SplitReader(s).text_records()]
    assert got == expected_lines(text.encode("utf-8"))
    batched = [line for s in splits for _, batch in SplitReader(s).text_batches(3) for line in batch]
    assert batched == [line for _, line in got]


def test_split_boundaries_follow_block_size(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"x" * 250)
    splits = plan_splits([str(path)], 100)
    assert [(s.start, s.end) for s in splits] == [(0, 100), (100, 200), (200, 250)]
