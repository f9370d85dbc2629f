"""The ``mapred`` command: help texts, exit codes and one-line errors for bad input; README smoke run."""
import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mapred.cli import main

pytestmark = pytest.mark.timeout(120)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORDCOUNT = os.path.join(ROOT, "examples", "wordcount.py")


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_explains_every_subcommand():
    top = invoke("--help")
    assert top.exit_code == 0 and "run" in top.output
    for name in main.commands:
        res = invoke(name, "--help")
        assert res.exit_code == 0, name
        assert len(res.output.splitlines()) > 3, name


def test_run_wordcount_writes_output_and_counters(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("b a\na\n")
    out = tmp_path / "out"
    res = invoke("run", WORDCOUNT, str(src), "-o", str(out), "-r", "2", "-w", "2")
    assert res.exit_code == 0, res.output
    lines = sorted(l for p in out.glob("part-*") for l in p.read_text().splitlines())
    assert lines == ["a\t2", "b\t1"]
    assert (out / "_SUCCESS").exists()
    assert "input_records" in res.stderr and "map 1/1" in res.stderr


@pytest.mark.parametrize("args, message", [
    (["{wc}", "{missing}", "-o", "{out}"], "does not exist"),
    (["{wc}", "{tmp}/*.none", "-o", "{out}"], "matches no files"),
    (["{nojob}", "{input}", "-o", "{out}"], "defines no Job"),
    (["{tmp}/absent.py", "{input}", "-o", "{out}"], "JOBFILE"),
    (["{wc}", "{input}", "-o", "{out}", "--param", "novalue"], "key=value"),
    (["{wc}", "{input}", "-o", "{existing}"], "already exists"),
])
def test_bad_input_is_one_clear_line_and_nonzero_exit(tmp_path, args, message):
    (tmp_path / "in.txt").write_text("x y\n")
    (tmp_path / "nojob.py").write_text("x = 1\n")
    (tmp_path / "existing").mkdir()
    names = {"wc": WORDCOUNT, "missing": str(tmp_path / "missing.txt"), "out": str(tmp_path / "out"),
             "tmp": str(tmp_path), "nojob": str(tmp_path / "nojob.py"), "input": str(tmp_path / "in.txt"),
             "existing": str(tmp_path / "existing")}
    res = CliRunner().invoke(main, ["run", *[a.format(**names) for a in args]])
    assert res.exit_code != 0
    assert message in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def test_failing_job_exits_nonzero_with_offset(tmp_path):
    job = tmp_path / "bad.py"
    job.write_text("import mapred\n"
                   "def m(off, line):\n"
                   "    if 'boom' in line:\n"
                   "        raise RuntimeError('exploded')\n"
                   "    yield line, 1\n"
                   "job = mapred.Job(mapper=m, reducer=lambda k, vs: [(k, sum(vs))], max_attempts=2)\n")
    src = tmp_path / "in.txt"
    src.write_text("fine\nboom here\n")
    res = CliRunner().invoke(main, ["run", str(job), str(src), "-o", str(tmp_path / "out"), "-q"])
    assert res.exit_code == 1
    assert "record offset 5" in res.output and "RuntimeError: exploded" in res.output
    assert not (tmp_path / "out").exists()


def test_readme_first_command_prints_wordcount_output(tmp_path):
    """The README's first command, minus its install step, run as a user would from the repo root."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    first = re.search(r"```(?:bash|sh)?\n(.+?)\n", readme).group(1)
    assert first.startswith("pip install")
    command = first.split("&&", 1)[1].strip()
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    done = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=90, executable="/bin/bash")
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert rows and all(len(r) == 2 and r[1].isdigit() for r in rows)
    assert rows[0] == ["the", "23"]
