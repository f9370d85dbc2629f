"""Concurrent writers and readers on distinct files; many small files."""
import threading

import pytest

from mapred.storage import Client

from storagekit import BLOCK, payload


@pytest.mark.timeout(90)
def test_concurrent_writers_and_readers(shared_cluster):
    errors = []
    c0 = shared_cluster.client()
    c0.write_bytes("/conc/shared-read", payload(3 * BLOCK, seed=77), overwrite=True)

    def writer(k):
        try:
            c = Client(shared_cluster.namenode_addr, short_circuit=bool(k % 2))
            for i in range(4):
                data = payload(BLOCK + k * 1000 + i, seed=k)
                c.write_bytes(f"/conc/w{k}/f{i}", data)
                assert c.read_bytes(f"/conc/w{k}/f{i}") == data
            c.close()
        except Exception as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    def reader(k):
        try:
            c = Client(shared_cluster.namenode_addr, short_circuit=bool(k % 2))
            for _ in range(5):
                assert c.read_bytes("/conc/shared-read") == payload(3 * BLOCK, seed=77)
            c.close()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    threads += [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(c0.ls("/conc")) == 7


@pytest.mark.timeout(90)
def test_many_small_files(shared_cluster):
    c = shared_cluster.client()
    c.mkdir("/small", parents=True)
    for i in range(300):
        c.write_bytes(f"/small/f{i:04d}", f"record {i}\n".encode())
    entries = c.ls("/small")
    assert len(entries) == 300
    assert c.read_bytes("/small/f0123") == b"record 123\n"
    assert c.fsck("/small")["files"] == 300
    c.rm("/small", recursive=True)
    assert not c.exists("/small")
