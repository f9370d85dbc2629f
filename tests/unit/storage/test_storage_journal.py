"""The journal: fsynced appends, torn tails cut, checkpoints, replay to the same tree."""
import os

from mapred.storage.journal import Journal
from mapred.storage.namespace import Namespace


def write_some(j, ns, n):
    for i in range(n):
        ops = ns.add_file_ops(f"/d{i % 3}/f{i}", 3, 10, [[i + 1, 10]], float(i))
        j.append(ops, ns.txid + len(ops))
        for op in ops:
            ns.apply(op)


def test_replay_restores_every_acknowledged_op(tmp_path):
    j = Journal(str(tmp_path))
    ns = j.load()
    write_some(j, ns, 20)
    j.close()
    assert Journal(str(tmp_path)).load().image() == ns.image()


def test_torn_tail_is_cut(tmp_path):
    j = Journal(str(tmp_path))
    ns = j.load()
    write_some(j, ns, 5)
    j.close()
    with open(tmp_path / "edits", "ab") as f:
        f.write(b"\x40\x00\x00\x00garbage")          # a record cut short by a crash
    j2 = Journal(str(tmp_path))
    assert j2.load().image() == ns.image()
    ns2 = Namespace.from_image(ns.image())
    write_some(j2, ns2, 1)                            # appending after the cut still replays
    j2.close()
    assert Journal(str(tmp_path)).load().txid == ns2.txid


def test_checkpoint_then_more_edits(tmp_path):
    j = Journal(str(tmp_path), checkpoint_every=4)
    ns = j.load()
    write_some(j, ns, 5)
    assert j.due()
    j.checkpoint(ns)
    assert os.path.getsize(tmp_path / "edits") == 0
    write_some(j, ns, 3)
    j.close()
    assert Journal(str(tmp_path)).load().image() == ns.image()


def test_crash_between_image_and_log_reset_is_harmless(tmp_path):
    j = Journal(str(tmp_path))
    ns = j.load()
    write_some(j, ns, 4)
    with open(tmp_path / "image", "wb") as f:         # image written, log not yet truncated
        import msgpack
        f.write(msgpack.packb(ns.image()))
    j.close()
    assert Journal(str(tmp_path)).load().image() == ns.image()
