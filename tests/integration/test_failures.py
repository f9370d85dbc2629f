"""Failures the local runner must survive or report: raising mappers, dying executors, bad records."""
import os

import pytest

import mapred
from mapred.errors import JobFailed
from mapred.testing import assert_matches_reference

import probes

pytestmark = pytest.mark.timeout(120)

LINES = "alpha beta\ngamma delta\nthe bad one\nepsilon\n"


def test_mapper_raising_on_one_record_fails_job_with_offset_and_traceback(clusters, write_files, tmp_path):
    paths = write_files({"in.txt": LINES})
    job = mapred.Job(mapper=probes.raise_on_mapper, reducer=probes.add, params={"bad_line": "the bad one"},
                     max_attempts=3)
    out = tmp_path / "out"
    with pytest.raises(JobFailed) as info:
        clusters.get(2).run(job, paths, str(out))
    message = str(info.value)
    assert "record offset 23" in message          # "alpha beta\n" (11) + "gamma delta\n" (12)
    assert "ValueError: cannot handle 'the bad one'" in message
    assert "Traceback" in message and "raise_on_mapper" in message
    assert "3 failed attempts" in message and "in.txt" in message
    assert info.value.cause["offset"] == 23
    assert not out.exists()                       # nothing left looking complete


def test_executor_killed_by_os_exit_mid_task_is_retried(clusters, write_files, tmp_path):
    paths = write_files({"a.txt": LINES * 50, "b.txt": LINES})
    marker = tmp_path / "markers"
    marker.mkdir()
    job = mapred.Job(mapper=probes.crash_once_mapper, reducer=probes.add, num_reducers=2,
                     params={"crash_line": "epsilon", "marker_dir": str(marker)})
    result = clusters.get(2).run(job, paths, str(tmp_path / "out"))
    assert os.listdir(marker) == ["crashed"]
    assert result.counters["job"]["failed_attempts"] >= 1
    assert dict(result)["epsilon"] == "51"


def test_map_only_job_commits_one_part_per_map(clusters, write_files, tmp_path):
    paths = write_files({"a.txt": LINES, "b.txt": LINES})
    job = mapred.Job(mapper=lambda off, line: [(off, line)])
    result = clusters.get(2).run(job, paths, str(tmp_path / "out"))
    names = sorted(os.listdir(result.path))
    assert names == ["_SUCCESS", "part-00000", "part-00001"]
    assert_matches_reference(job, paths, result)


def test_mapper_yielding_a_non_pair_is_a_clear_error(clusters, write_files, tmp_path):
    paths = write_files({"a.txt": LINES})
    job = mapred.Job(mapper=lambda off, line: [line], reducer=probes.add)
    with pytest.raises(JobFailed, match=r"mapper yielded 'alpha beta' \(str\); expected a \(key, value\) pair"):
        clusters.get(1).run(job, paths, str(tmp_path / "out"))


def test_unencodable_key_is_a_clear_error(clusters, write_files, tmp_path):
    paths = write_files({"a.txt": LINES})
    job = mapred.Job(mapper=lambda off, line: [(object(), 1)], reducer=probes.add, num_reducers=2)
    with pytest.raises(JobFailed, match="cannot be encoded"):
        clusters.get(1).run(job, paths, str(tmp_path / "out"))


def test_undecodable_line_names_file_and_offset_or_is_replaced(clusters, write_files, tmp_path):
    paths = write_files({"bin.txt": b"good line\nbad \xff\xfe line\n"})
    job = mapred.Job(mapper=lambda off, line: [(line, 1)], reducer=probes.add)
    with pytest.raises(JobFailed, match=r"bin.txt: line at byte offset 10 is not valid UTF-8"):
        clusters.get(1).run(job, paths, str(tmp_path / "out"))
    lenient = mapred.Job(mapper=lambda off, line: [(line, 1)], reducer=probes.add, errors="replace")
    result = clusters.get(1).run(lenient, paths, str(tmp_path / "out2"))
    assert dict(result) == {"good line": "1", "bad \ufffd\ufffd line": "1"}


def test_existing_output_is_refused_and_kept(clusters, write_files, tmp_path):
    paths = write_files({"a.txt": LINES})
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious").write_text("keep me")
    with pytest.raises(mapred.errors.OutputExistsError, match="already exists"):
        clusters.get(1).run(mapred.Job(mapper=probes.raise_on_mapper), paths, str(out))
    assert (out / "precious").read_text() == "keep me"


def test_missing_input_and_empty_glob(clusters, tmp_path):
    job = mapred.Job(mapper=lambda k, v: [(v, 1)])
    with pytest.raises(mapred.errors.InputError, match="does not exist"):
        clusters.get(1).run(job, [str(tmp_path / "nope.txt")], str(tmp_path / "o1"))
    with pytest.raises(mapred.errors.InputError, match="matches no files"):
        clusters.get(1).run(job, [str(tmp_path / "*.nothing")], str(tmp_path / "o2"))


def test_tasks_overlap_and_retries_do_not_duplicate_output(clusters, write_files, tmp_path):
    paths = write_files({f"f{i}.txt": f"line{i}\n" for i in range(4)})
    marker = tmp_path / "m"
    marker.mkdir()
    job = mapred.Job(mapper=probes.overlap_mapper, reducer=probes.add, mapper_init=probes.count_runs_init,
                     params={"marker_dir": str(marker), "sleep": 0.4})
    result = clusters.get(2).run(job, paths, str(tmp_path / "out"))
    spans = [tuple(map(float, (marker / n).read_text().split())) for n in os.listdir(marker) if "-m-" in n
             and "-a" not in n.rsplit("-m-", 1)[1]]
    assert len(spans) == 4
    overlapping = any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1:])
    assert overlapping, "no two map tasks ran at the same time on 2 executors"
    assert dict(result) == {f"line{i}": "1" for i in range(4)}


def test_segfaulting_executor_fails_only_that_attempt(clusters, write_files, tmp_path):
    paths = write_files({"a.txt": "x\ny\n"})
    marker = tmp_path / "m"
    marker.mkdir()
    job = mapred.Job(mapper=probes.segfault_once_mapper, reducer=probes.add, params={"marker_dir": str(marker)})
    result = clusters.get(2).run(job, paths, str(tmp_path / "out"))
    assert dict(result) == {"x": "1", "y": "1"}
    assert result.counters["job"]["failed_attempts"] == 1


def test_memory_cap_exceeded_fails_attempts_with_a_clear_reason(write_files, tmp_path):
    from mapred import config
    paths = write_files({"a.txt": "x\n"})
    job = mapred.Job(mapper=probes.hog_memory_mapper, reducer=probes.add, params={"hog_bytes": 400 << 20},
                     max_attempts=2)
    with mapred.LocalCluster(1, config=config.load(executor_memory_cap=200 << 20)) as cluster:
        with pytest.raises(JobFailed, match=r"MemoryCapExceeded: executor used \d+ MiB, over its cap of 200 MiB"):
            cluster.run(job, paths, str(tmp_path / "out"))


def test_a_commit_the_file_system_refuses_fails_the_job(clusters, write_files, tmp_path, monkeypatch):
    import mapred.io.commit
    paths = write_files({"a.txt": "x\n"})

    def refuse(output, attempt, files):
        raise PermissionError(f"cannot rename into {output}")

    monkeypatch.setattr(mapred.io.commit, "commit_task", refuse)
    job = mapred.Job(mapper=lambda k, v: [(v, 1)], reducer=probes.add)
    with pytest.raises(JobFailed, match="CommitError: committing .* failed: PermissionError"):
        clusters.get(1).run(job, paths, str(tmp_path / "out"))
    assert not (tmp_path / "out" / "_SUCCESS").exists()
