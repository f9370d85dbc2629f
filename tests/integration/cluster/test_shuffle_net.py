"""The network shuffle alone: a real shuffle server, a fetcher with a tiny reduce buffer, a dead peer."""
import os
import socket

import pytest

from mapred.shuffle.fetch import FetchError
from mapred.shuffle.netfetch import NetFetcher
from mapred.shuffle.serve import ShuffleServer
from mapred.shuffle.spill import RunWriter


def write_run(path, partitions, compression="none"):
    w = RunWriter(str(path), len(partitions), compression)
    for records in partitions:
        w.write_partition(records)
    return w.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_fetch_spills_past_the_reduce_buffer_and_keeps_every_record(tmp_path, compression):
    data = tmp_path / "worker"
    data.mkdir()
    runs = []
    for m in range(3):
        parts = [[(f"k{m}-{p}-{i:05d}", [i] * 3) for i in range(3000)] for p in range(2)]
        runs.append((write_run(data / f"map{m}.out", parts, compression), parts))
    server = ShuffleServer(str(data), require_tokens=False).start()   # tokens: test_security_cluster
    try:
        fetcher = NetFetcher(buffer_bytes=20_000, window=8192, timeout=5.0)
        sources = [(m, "w", {"path": idx.path, "addr": server.addr}) for m, (idx, _) in enumerate(runs)]
        got = fetcher(sources, 1, str(tmp_path / "reduce"))
        for m, (_, parts) in enumerate(runs):
            assert [(k, list(v)) for k, v in got[m]] == parts[1]
        assert fetcher.spilled > 0 and fetcher.in_memory <= 20_000
        assert any(n.startswith("fetched-map-") for n in os.listdir(tmp_path / "reduce"))
    finally:
        server.stop()


@pytest.mark.timeout(30)
def test_unreachable_map_output_raises_fetch_error_naming_the_map(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fetcher = NetFetcher(buffer_bytes=1 << 20, retries=2, timeout=0.5)
    with pytest.raises(FetchError) as info:
        fetcher([(7, "w", {"path": "/x/file.out", "addr": f"tcp://127.0.0.1:{port}"})], 0, str(tmp_path))
    assert info.value.map_index == 7 and "after 3 tries" in str(info.value)


@pytest.mark.timeout(30)
def test_server_refuses_paths_outside_its_data_dir(tmp_path):
    (tmp_path / "data").mkdir()
    outside = write_run(tmp_path / "elsewhere.out", [[("k", [1])]])
    server = ShuffleServer(str(tmp_path / "data"), require_tokens=False).start()
    try:
        fetcher = NetFetcher(buffer_bytes=1 << 20, retries=0, timeout=2.0)
        with pytest.raises(FetchError, match="not a map output of this worker"):
            fetcher([(0, "w", {"path": outside.path, "addr": server.addr})], 0, str(tmp_path / "r"))
    finally:
        server.stop()
