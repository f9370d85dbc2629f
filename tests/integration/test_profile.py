"""`mapred run --profile`: the per-stage time of every task and the sums, from the attempts' own counters."""
import re

import pytest

from click.testing import CliRunner

from mapred.cli import main as cli

JOB = '''
import mapred

def mapper(offset, line):
    for word in line.split():
        yield word, 1

def reducer(word, counts):
    yield word, sum(counts)

job = mapred.Job(mapper=mapper, combiner=reducer, reducer=reducer, num_reducers=2)
'''


@pytest.mark.timeout(120)
def test_run_profile_prints_stages_per_task_and_summed(tmp_path):
    jobfile = tmp_path / "wc.py"
    jobfile.write_text(JOB)
    data = tmp_path / "in.txt"
    data.write_text("".join(f"w{i % 97} w{i % 13} the\n" for i in range(20_000)))
    result = CliRunner().invoke(cli, ["run", str(jobfile), str(data), "-o", str(tmp_path / "out"), "-q",
                                      "-w", "2", "--profile"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "map stages (ms):" in out and "reduce stages (ms):" in out
    header = next(line for line in out.splitlines() if line.strip().startswith("task") and "collect" in line)
    for stage in ("read", "map", "collect", "total"):
        assert stage in header.split()
    maps = re.findall(r"^\s+(job\w+-m-\d{5})\s", out, re.M)
    reduces = re.findall(r"^\s+(job\w+-r-\d{5})\s", out, re.M)
    assert maps and len(reduces) == 2
    assert f"all {len(maps)} maps" in out and "all 2 reduces" in out
    summed = next(line for line in out.splitlines() if f"all {len(maps)} maps" in line).split()
    per_task = [line.split() for line in out.splitlines() if re.match(r"^\s+job\w+-m-", line)]
    # the summed row is the column sums of the task rows (3 leading words: "all N maps")
    for col in range(1, len(per_task[0])):
        assert int(summed[col + 2]) == sum(int(row[col]) for row in per_task)
