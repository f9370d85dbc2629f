"""The master's journal on its own: what a restarted master takes over, and what it forgets."""
from mapred.runtime.journal import MasterJournal


def _end(j: MasterJournal, job_id: str, finished: float, state: str = "SUCCEEDED") -> None:
    j.ended(job_id, "wc", state, {}, {"job": {"n": 1}}, f"/out/{job_id}", owner="ann", submitter="ann",
            submitted=finished - 1.0, finished=finished,
            progress={"state": state, "maps": 2, "maps_done": 2, "reduces": 1, "reduces_done": 1})


def test_epochs_unfinished_jobs_and_a_torn_tail(tmp_path):
    j = MasterJournal(str(tmp_path))
    assert j.open().epoch == 1
    j.submitted("j1", b"submit", b"code", 5.0)
    j.committed("j1", "j1-r-00000", "j1-r-00000-a0", "w1", {"files": ["p"]}, {"reduce": {"n": 3}})
    j.close()
    with open(tmp_path / "journal", "ab") as f:
        f.write(b"\x10\x00\x00\x00garbage")            # a crash mid-append: never acknowledged
    replay = MasterJournal(str(tmp_path)).open()
    assert replay.epoch == 2
    (job,) = replay.unfinished()
    assert job.submit["blob"] == b"code" and list(job.commits) == ["j1-r-00000"]


def test_finished_jobs_are_kept_with_their_summary_bounded_in_number_and_age(tmp_path):
    j = MasterJournal(str(tmp_path), keep_ended=3, keep_seconds=100.0)
    j.open()
    for n in range(5):
        j.submitted(f"j{n}", b"s", b"c", 1000.0 + n)
        _end(j, f"j{n}", finished=1000.0 + n)
    j.close()
    replay = MasterJournal(str(tmp_path), keep_ended=3, keep_seconds=100.0).open(now=1050.0)
    ends = replay.ended()
    assert [e["job_id"] for e in ends] == ["j2", "j3", "j4"]        # the newest 3, oldest first
    assert ends[-1]["owner"] == "ann" and ends[-1]["progress"]["reduces_done"] == 1
    assert ends[-1]["finished"] == 1004.0 and ends[-1]["submitted"] == 1003.0
    later = MasterJournal(str(tmp_path), keep_ended=3, keep_seconds=100.0).open(now=1103.5)
    assert [e["job_id"] for e in later.ended()] == ["j4"]          # j2 and j3 ended over 100 s ago
