"""What users hit in their first hour, each fixed: one clear line for a bad JOBFILE, ``-r 0``,
``python examples/X.py``, help on every option, fatal unencodable keys, long lines, honest counters,
and nothing left behind when ``mapred run`` is stopped (SIGTERM, Ctrl-C, SIGKILL) or ``output=None``."""
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import click
import psutil
import pytest
from click.testing import CliRunner

import mapred
from mapred.cli import main
from mapred.errors import JobFailed
from mapred.io.inputs import SplitReader, plan_splits

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(60)
def test_jobfile_with_a_bad_import_is_one_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nimport notamodule_xyz\n")
    (tmp_path / "in.txt").write_text("a\n")
    res = invoke("run", str(bad), str(tmp_path / "in.txt"), "-o", str(tmp_path / "out"))
    assert res.exit_code == 1
    assert "notamodule_xyz" in res.output and "line 2" in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


@pytest.mark.timeout(60)
def test_zero_reducers_makes_a_map_only_job(tmp_path):
    jobfile = tmp_path / "wc.py"
    jobfile.write_text("import mapred\n"
                       "def m(_, line):\n    for w in line.split():\n        yield w, 1\n"
                       "def add(w, c):\n    yield w, sum(c)\n"
                       "job = mapred.Job(m, combiner=add, reducer=add, num_reducers=3)\n")
    (tmp_path / "in.txt").write_text("b a\na\n")
    res = invoke("run", str(jobfile), str(tmp_path / "in.txt"), "-o", str(tmp_path / "out"), "-r", "0",
                 "-w", "1")
    assert res.exit_code == 0, res.output
    lines = sorted(l for p in (tmp_path / "out").glob("part-*") for l in p.read_text().splitlines())
    assert lines == ["a\t1", "a\t1", "b\t1"]       # the mappers' own pairs: no reduce ran


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name, expect", [("wordcount", "better\t8"), ("grep", "MapReduce"),
                                          ("inverted_index", "zen.txt:"), ("pipeline", "\t")])
def test_python_examples_run_as_scripts(name, expect):
    res = subprocess.run([sys.executable, os.path.join("examples", f"{name}.py")], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, timeout=170)
    assert res.returncode == 0, res.stderr
    assert expect in res.stdout and "output lines" in res.stderr


def _options(cmd, path=("mapred",)):
    for p in cmd.params:
        if isinstance(p, click.Option) and not p.hidden:
            yield path, p
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _options(sub, path + (name,))


def test_every_cli_option_has_help_and_format_lists_all_formats():
    missing = [(" ".join(path), p.opts[0]) for path, p in _options(main) if not p.help]
    assert missing == []
    res = invoke("run", "--help")
    assert all(f in res.output for f in ("text", "msgpack", "raw", "dataset"))


@pytest.mark.timeout(60)
def test_unencodable_key_is_a_fatal_error_at_its_record(clusters, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("ok\nok\nbad here\nok\n")

    def mapper(offset, line):
        yield (object() if line.startswith("bad") else line), 1

    job = mapred.Job(mapper, reducer=lambda k, vs: [(k, sum(vs))], name="unencodable")
    with pytest.raises(JobFailed) as info:
        job.run([str(path)], str(tmp_path / "out"), cluster=clusters.get(1))
    message = str(info.value)
    assert "record offset 6" in message and "cannot be encoded" in message
    assert info.value.cause["attempt"].endswith("a0")          # fatal: not retried
    assert "Traceback" not in message and "msgpack" not in message


@pytest.mark.timeout(120)
def test_a_58mb_single_line_is_read_with_bounded_memory(tmp_path):
    path = tmp_path / "one-line.txt"
    size = 58 << 20
    with open(path, "wb") as f:
        chunk = b"word " * (1 << 18)
        for _ in range(size // len(chunk)):
            f.write(chunk)
        f.write(b"\n")
    splits = plan_splits([str(path)], 8 << 20)
    tracemalloc.start()
    try:
        found = []
        for split in splits:
            reader = SplitReader(split)
            for offset, block in reader.text_byte_blocks():
                found.append((offset, len(block)))
                del block
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == [(0, os.path.getsize(path))]               # one split owns the line, whole
    assert peak < 4 * os.path.getsize(path)                    # a few copies, not one per read


@pytest.mark.timeout(60)
def test_map_input_bytes_add_up_to_the_input_size(clusters, tmp_path):
    paths = []
    for i in range(2):
        p = tmp_path / f"in{i}.txt"
        p.write_text("".join(f"line {j} of file {i} with some words\n" for j in range(3000)))
        paths.append(str(p))
    job = mapred.Job(lambda o, l: [(l.split()[0], 1)], reducer=lambda k, vs: [(k, sum(vs))], split_size=7000)
    result = job.run(paths, str(tmp_path / "out"), cluster=clusters.get(2))
    assert result.counters["map"]["input_bytes"] == sum(os.path.getsize(p) for p in paths)


@pytest.mark.timeout(60)
def test_output_none_temp_dir_is_removed_at_exit(tmp_path):
    (tmp_path / "in.txt").write_text("a b\n")
    code = ("import mapred\n"
            "job = mapred.Job(lambda o, l: [(w, 1) for w in l.split()], reducer=lambda k, vs: [(k, sum(vs))])\n"
            f"r = job.run([{str(tmp_path / 'in.txt')!r}], workers=1)\n"
            "print(r.path); print(sorted(r))\n")
    res = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=50)
    assert res.returncode == 0, res.stderr
    out_path, pairs = res.stdout.splitlines()
    assert pairs == "[('a', '1'), ('b', '1')]"
    assert not os.path.exists(out_path)


SLOW_JOB = ("import time, mapred\n"
            "def m(o, line):\n    time.sleep(0.02)\n    yield line, 1\n"
            "job = mapred.Job(m, reducer=lambda k, vs: [(k, sum(vs))], num_reducers=2)\n")


def _start_slow_run(tmp_path, name):
    jobfile = tmp_path / "slow.py"
    jobfile.write_text(SLOW_JOB)
    src = tmp_path / "in.txt"
    src.write_text("".join(f"l{i}\n" for i in range(3000)))
    out = tmp_path / name
    proc = subprocess.Popen([sys.executable, "-m", "mapred", "run", str(jobfile), str(src), "-o", str(out),
                             "-w", "2"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    wait_until(lambda: (out / "_temporary").exists() and
               any("mapred.task.child" in " ".join(c.cmdline()) for c in psutil.Process(proc.pid).children()),
               30, "the run to start its attempts")
    time.sleep(0.5)       # let the attempts run for a while (progress reports included)
    return proc, out


def _executors_of(pid):
    try:
        return [c for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how, code", [("term", 143), ("ctrl-c", 130)])
def test_stopped_run_leaves_no_output_and_prints_no_traceback(tmp_path, how, code):
    proc, out = _start_slow_run(tmp_path, "out")
    children = _executors_of(proc.pid)
    if how == "term":
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)     # what a terminal's Ctrl-C does: the whole foreground group
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert not out.exists()
    psutil.wait_procs(children, timeout=10)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.timeout(90)
def test_sigkilled_run_leaves_nothing_that_blocks_a_rerun(tmp_path):
    proc, out = _start_slow_run(tmp_path, "out")
    children = _executors_of(proc.pid)
    proc.kill()
    _, err = proc.communicate(timeout=30)
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not [c for c in alive if c.status() != psutil.STATUS_ZOMBIE]   # executors follow their runner
    assert "Traceback" not in err and "BrokenPipe" not in err
    (tmp_path / "in.txt").write_text("x\ny\n")
    again = invoke("run", str(tmp_path / "slow.py"), str(tmp_path / "in.txt"), "-o", str(out), "-w", "1", "-q")
    assert again.exit_code == 0, again.output
    assert (out / "_SUCCESS").exists()
