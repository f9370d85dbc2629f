"""Unmodified mrjob scripts on mapred, with mrjob's own semantics.

An ``mrjob.job.MRJob`` subclass becomes one mapred ``Job`` per ``MRStep``
(a ``Pipeline`` when there are several).  The semantics are mrjob's because
mrjob's own machinery runs inside each task: the job's argument parser
(``configure_args``, passthrough and file options), its ``steps()`` and
``MRStep`` objects, ``pick_protocols`` for every read and write, and
``map_pairs`` / ``combine_pairs`` / ``reduce_pairs`` for the hooks and the
grouping.  mapred provides what Hadoop Streaming provides: input splits, a
shuffle that partitions and sorts by the *encoded* key bytes (everything
before the first tab of the line the protocol wrote), files in the task's
working directory, and counters.

What mapred cannot honour is refused up front with a message naming the
feature and the step (see ``docs/mrjob.md`` for the table).
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from typing import Any, Iterable, Iterator

from mapred.errors import ConfigError
from mapred.job import Job, Pipeline
from mapred.taskcontext import context, counter

#: JOBCONF keys that have a mapred meaning: the number of reduce tasks.
REDUCER_KEYS = ("mapreduce.job.reduces", "mapred.reduce.tasks")
#: MRStep parts that run a shell command under Hadoop Streaming.
COMMAND_PARTS = ("mapper_cmd", "combiner_cmd", "reducer_cmd",
                 "mapper_pre_filter", "combiner_pre_filter", "reducer_pre_filter")
PICKLE_PROTOCOLS = ("PickleProtocol", "PickleValueProtocol")


def _mrjob():
    try:
        import mrjob.job
        import mrjob.step
    except ImportError:
        raise ConfigError("running an mrjob script needs the mrjob package: pip install 'mapred[mrjob]'") from None
    return mrjob


def is_mrjob_class(obj: Any) -> bool:
    """Whether ``obj`` is an ``mrjob.job.MRJob`` subclass (without importing mrjob if nothing did)."""
    import sys
    module = sys.modules.get("mrjob.job")
    return (module is not None and isinstance(obj, type) and issubclass(obj, module.MRJob)
            and obj is not module.MRJob)


def parse(job_class: type, args: Iterable[str] = ()):
    """An instance of ``job_class`` with ``args`` parsed by the job's own argument parser.

    mrjob's parser exits on a bad option; that becomes a ``ConfigError``
    carrying the parser's own message.
    """
    _mrjob()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return job_class(args=list(args))
    except SystemExit:                                  # argparse's own exit, message on stderr
        message = err.getvalue().strip().splitlines()
        reason = message[-1] if message else "rejected by its argument parser"
    except ValueError as exc:                           # mrjob's parser raises for a missing argument
        reason = str(exc)
    raise ConfigError(f"{job_class.__name__}: bad arguments {list(args)!r}: {reason}")


def from_mrjob(job_class: type, args: Iterable[str] = (), script_path: str | None = None) -> Job | Pipeline:
    """A mapred ``Job`` (one step) or ``Pipeline`` (several) running ``job_class`` unmodified.

    ``args`` are the script's own command-line arguments (options and, as
    with mrjob, input paths: the positional ones are available as
    ``.mrjob_inputs`` on the result).  Raises ``ConfigError`` naming the
    feature and step for anything mapred cannot honour.  ``script_path``
    names the file a class run from a JOBFILE came from, so that ``FILES``
    resolve beside the script as they do under mrjob.
    """
    mrjob = _mrjob()
    if not is_mrjob_class(job_class):
        raise ConfigError(f"from_mrjob takes an mrjob.job.MRJob subclass, got {job_class!r}")
    if script_path is not None and job_class.mr_job_script() is None:
        job_class = _located(job_class, os.path.abspath(script_path))
    args = [str(a) for a in args]
    probe = parse(job_class, args)
    steps = probe.steps()
    if not steps:
        raise ConfigError(f"{job_class.__name__} defines no steps (no mapper, combiner or reducer)")
    _refuse_unsupported(job_class, probe, steps, mrjob)
    shipped = _files_to_ship(probe)
    reducers = _reducers(probe)
    jobs = [_step_job(job_class, args, shipped, i, len(steps), step, reducers, probe)
            for i, step in enumerate(steps)]
    result: Job | Pipeline = jobs[0] if len(jobs) == 1 else Pipeline(jobs)
    result.mrjob_inputs = list(probe.options.args)
    return result


def _located(job_class: type, script_path: str) -> type:
    """``job_class`` knowing its script's path (a class run from a JOBFILE has no importable module)."""
    def mr_job_script(cls):
        return script_path
    return type(job_class.__name__, (job_class,), {"mr_job_script": classmethod(mr_job_script),
                                                   "__module__": job_class.__module__})


# ------------------------------------------------------------------------------------------ checks
def _refuse_unsupported(job_class: type, probe, steps: list, mrjob) -> None:
    name = job_class.__name__
    for i, step in enumerate(steps):
        if not isinstance(step, mrjob.step.MRStep):
            raise ConfigError(f"{name} step {i} is a {type(step).__name__}: mapred runs MRStep steps only "
                              "(jar and Spark steps need Hadoop or Spark)")
        for part in COMMAND_PARTS:
            if step[part]:
                raise ConfigError(f"{name} step {i} uses {part} (a Hadoop Streaming shell command): "
                                  "mapred runs Python mappers, combiners and reducers only")
    features = {"HADOOP_INPUT_FORMAT": probe.hadoop_input_format(),
                "HADOOP_OUTPUT_FORMAT": probe.hadoop_output_format(),
                "PARTITIONER": probe.partitioner(), "LIBJARS": probe.libjars(),
                "ARCHIVES": probe.archives(), "DIRS": probe.dirs()}
    for feature, value in features.items():
        if value:
            raise ConfigError(f"{name} sets {feature} ({value!r}): a Hadoop feature mapred cannot honour")


def _reducers(probe) -> int | None:
    conf = probe.jobconf()
    for key in REDUCER_KEYS:
        if key in conf:
            try:
                return int(conf[key])
            except (TypeError, ValueError):
                raise ConfigError(f"JOBCONF {key}={conf[key]!r} is not a number of reducers") from None
    return None


def _files_to_ship(probe) -> dict[str, bytes]:
    """``FILES`` and file options, read now on the client: ``{name in the task's working dir: bytes}``."""
    shipped: dict[str, bytes] = {}
    paths = list(probe.files())
    for dest in sorted(probe._file_arg_dests):    # mrjob keeps the file options' dests here
        value = getattr(probe.options, dest, None)
        paths += [value] if isinstance(value, str) else list(value or ())
    for spec in paths:
        path, _, name = str(spec).partition("#")
        path = os.path.expanduser(os.path.expandvars(path))
        try:
            with open(path, "rb") as f:
                shipped[name or os.path.basename(path)] = f.read()
        except OSError as exc:
            raise ConfigError(f"{type(probe).__name__}: file {path!r} to send to tasks is unreadable: "
                              f"{exc.strerror}") from None
    return shipped


def _uses_pickle(probe) -> bool:
    protocols = [type(p).__name__ for p in (probe.internal_protocol(), probe.input_protocol())]
    return any(p in PICKLE_PROTOCOLS for p in protocols)


# ------------------------------------------------------------------------------------------ steps
def _step_job(job_class, args, shipped, step_num, n_steps, step, reducers, probe) -> Job:
    task = _Task(job_class, args, shipped, step_num, first=step_num == 0)
    has_reducer = step["reducer"] is not None
    last = step_num == n_steps - 1
    combiner = None
    if has_reducer and step["combiner"] is not None and not (step["combiner_init"] or step["combiner_final"]):
        # a combiner with its own init/final hooks is run zero times, which mrjob's contract allows
        combiner = _Combiner(task)
    job = Job(map_stream=_MapStream(task, whole_line=last and not has_reducer),
              reduce_stream=_ReduceStream(task, whole_line=last, sort_values=bool(probe.sort_values()))
              if has_reducer else None,
              combiner=combiner, num_reducers=reducers if reducers is not None else 1,
              name=f"{job_class.__name__}[step {step_num + 1}/{n_steps}]")
    if _uses_pickle(probe):
        job.local_only = ("its protocol unpickles data, and mapred never unpickles bytes that crossed a "
                          "socket; use JSONProtocol, or run it on the local runner")
    return job


class _Task:
    """What every task of one step needs to rebuild the job: its class, args and files (picklable)."""

    def __init__(self, job_class, args, shipped, step_num, first) -> None:
        self.job_class, self.args, self.shipped = job_class, list(args), shipped
        self.step_num, self.first = step_num, first

    def instance(self):
        """A fresh job instance as mrjob's task runner makes it, with counters and status going to mapred."""
        job = parse(self.job_class, self.args)
        for dest in job._file_arg_dests:              # as in Hadoop: the option names the local copy
            value = getattr(job.options, dest, None)
            if isinstance(value, str):
                setattr(job.options, dest, _local_name(value))
            elif value:
                setattr(job.options, dest, [_local_name(v) for v in value])
        job.increment_counter = _increment_counter
        job.set_status = _set_status
        return job

    def protocols(self, job, step_type: str):
        """mrjob's (read, write) for this step; ``None`` for a part Hadoop would pass through unchanged."""
        try:
            return job.pick_protocols(self.step_num, step_type)
        except ValueError:
            return None

    @contextlib.contextmanager
    def working_dir(self):
        """A working directory holding the shipped files, current while the task runs (as Hadoop's is)."""
        if not self.shipped:
            yield
            return
        folder = tempfile.mkdtemp(prefix="mapred-mrjob-")
        before = os.getcwd()
        try:
            for name, data in self.shipped.items():
                with open(os.path.join(folder, name), "wb") as f:
                    f.write(data)
            os.chdir(folder)
            yield
        finally:
            os.chdir(before)
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _input_file_env(path: str):
    """The job conf Hadoop Streaming exports to a mapper: the file its split comes from (``jobconf_from_env``)."""
    names = ("mapreduce_map_input_file", "map_input_file")
    uri = path if "://" in path else "file://" + os.path.abspath(path)   # a URI, as Hadoop gives it
    before = {n: os.environ.get(n) for n in names}
    os.environ.update({n: uri for n in names})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _local_name(spec: str) -> str:
    path, _, name = spec.partition("#")
    return name or os.path.basename(path)


def _increment_counter(group, counter_name, amount=1) -> None:
    if not isinstance(amount, int):
        raise TypeError(f"amount must be an integer, not {amount!r}")
    counter(str(group).replace(",", ";"), str(counter_name).replace(",", ";"), amount)


def _set_status(msg) -> None:
    counter("mrjob status", str(msg), 1)


def _join(key: bytes, value: bytes | None) -> bytes:
    """The line Hadoop Streaming hands a task: key, tab, value (no tab when the writer wrote none)."""
    return key if value is None else key + b"\t" + value


def _split(line: bytes) -> tuple[bytes, bytes | None]:
    """Hadoop Streaming's key/value split of an output line: at the first tab."""
    key, tab, value = line.partition(b"\t")
    return key, (value if tab else None)


def _whole(line: bytes) -> tuple[str, None]:
    """A final output line, written by the text output exactly as the output protocol made it."""
    return line.decode("utf-8", errors="surrogateescape"), None


class _MapStream:
    """One map task: the step's input decoded by mrjob's read protocol, through ``map_pairs``."""

    def __init__(self, task: _Task, whole_line: bool) -> None:
        self.task, self.whole_line = task, whole_line

    def __call__(self, records: Iterator) -> Iterator:
        task = self.task
        with task.working_dir(), _input_file_env(context().split.path):
            job = task.instance()
            protocols = task.protocols(job, "mapper")
            lines = (self._line(k, v) for k, v in records)
            if protocols is None:                       # not a script step: lines pass through
                yield from (_whole(line) if self.whole_line else _split(line) for line in lines)
                return
            read, write = protocols
            pairs = (read(line) for line in lines)
            if job.steps()[task.step_num]["mapper_raw"]:
                # mapper_raw reads a whole file, once: in the task whose split starts it
                split = context().split
                if split.start != 0:
                    return
                job.options.args = [self._local_copy(split.path), split.path]
                pairs = iter(())
            encode = _whole if self.whole_line else _split
            for key, value in job.map_pairs(pairs, task.step_num):
                yield encode(write(key, value))

    def _line(self, key, value) -> bytes:
        if self.task.first:                             # text input: (offset, line)
            return value.encode("utf-8", errors="surrogateescape") if isinstance(value, str) else value
        return _join(key, value)                        # a previous step's (key, value) bytes

    @staticmethod
    def _local_copy(path: str) -> str:
        if not path.startswith("mrfs://"):
            return path
        from mapred.io.fs import get_fs
        local = os.path.join(os.getcwd(), os.path.basename(path))
        with get_fs(path).open_read(path) as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        return local


class _Combiner:
    """mapred's per-key combiner calling mrjob's ``combine_pairs`` on one key's values."""

    def __init__(self, task: _Task) -> None:
        self.task = task
        self._job = None
        self._protocols = None

    def __getstate__(self) -> dict:
        return {"task": self.task, "_job": None, "_protocols": None}

    def __call__(self, key: bytes, values: Iterable) -> Iterator:
        if self._job is None:                            # arg parsing is costly: once per process
            self._job = self.task.instance()
            self._protocols = self.task.protocols(self._job, "combiner")
        read, write = self._protocols
        pairs = (read(_join(key, v)) for v in values)
        for k, v in self._job.combine_pairs(pairs, self.task.step_num):
            yield _split(write(k, v))


class _ReduceStream:
    """One reduce task: every group of the partition, decoded by mrjob's protocol, through ``reduce_pairs``."""

    def __init__(self, task: _Task, whole_line: bool, sort_values: bool) -> None:
        self.task, self.whole_line, self.sort_values = task, whole_line, sort_values

    def __call__(self, groups: Iterator) -> Iterator:
        task = self.task
        with task.working_dir():
            job = task.instance()
            read, write = task.protocols(job, "reducer")
            encode = _whole if self.whole_line else _split
            for key, value in job.reduce_pairs(self._pairs(groups, read), task.step_num):
                yield encode(write(key, value))

    def _pairs(self, groups, read) -> Iterator:
        for key, values in groups:
            if self.sort_values:                         # Hadoop's secondary sort on the whole line
                values = sorted(values, key=lambda v: (v is not None, v or b""))
            for value in values:
                yield read(_join(key, value))
