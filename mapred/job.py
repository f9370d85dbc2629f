"""How users declare jobs: mapper / combiner / reducer, batch forms, hooks and pipelines.

Two forms run on the same engine:

* ``Job(mapper=..., reducer=...)`` — plain functions (closures and lambdas too);
* ``MRJob`` subclasses with ``mapper`` / ``combiner`` / ``reducer`` methods and
  per-task ``setup`` / ``teardown`` — mrjob's shape.

Contracts (the engine checks them and names the offender when one breaks):

* ``mapper(key, value)`` yields zero or more ``(key, value)`` pairs.  For text
  input the key is the line's byte offset and the value the line without its
  newline.
* ``map_batch(batch)`` yields pairs for a whole batch: a list of lines for text
  input, a list of ``(key, value)`` pairs for record input, the rows of an
  array dataset (a tuple of arrays when it has several).
* ``map_batch`` may also yield ``mapred.ArrayPairs(keys, values)``: a whole
  batch of pairs as two numpy arrays, shuffled without per-record Python;
  ``reduce_batch(keys, values)`` then gets a partition's pairs as arrays,
  sorted by key.  With ``input_mode="text"`` text splits reach ``map_batch``
  as one decoded string of whole lines (newlines kept) per block, and with
  ``input_mode="bytes"`` as the raw bytes of whole lines; ``output_format="raw"`` writes the bytes a
  reducer yields verbatim.
* ``combiner(key, values)`` and ``reducer(key, values)`` get every value of a
  key as an iterator and yield pairs.  A combiner may run zero, one or many
  times: it must be associative and not change the key.  A combiner marked
  associative (``mapred.combiners.sum`` / ``max`` / ``min`` / ``fold(f)``,
  or ``reduce_fn=f`` for both roles, as Spark's ``reduceByKey(f)``) is folded
  into one value per key as pairs are collected, with no list per key.
* ``*_init()`` hooks run before the first record of a task; ``*_final()``
  hooks may yield pairs after the last.
* ``map_stream(records)`` and ``reduce_stream(groups)`` own a whole task, as
  Hadoop's ``Mapper.run`` and Spark's ``mapPartitions`` do: the first gets an
  iterator of every ``(key, value)`` record of the split, the second an
  iterator of ``(key, values)`` groups of the partition in key order; each
  yields pairs.  They take the place of the per-record function and its
  hooks (adapters such as ``mapred.runners.from_mrjob`` use them).
* ``input_format`` (``csv``, ``jsonl``, ``parquet``, ``avro``, ``seq``, ``text``,
  ``records``; inferred from each file's extension when not given) with
  ``input_options`` picks how files become records (see ``mapred.formats``):
  the mapper gets ``(location, record)``, ``map_batch`` a list of records (or
  a numpy block with ``input_options={"record": "array"}``).  Record output
  formats take ``output_options`` (``schema``, ``compression``, ...).
  ``bad_records="skip"`` counts and quarantines bad input records (and
  records the output schema cannot hold) under ``OUT/_bad_records/``
  instead of failing the job.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable

from mapred.errors import ConfigError

OUTPUT_FORMATS = ("text", "msgpack", "raw", "dataset", "csv", "jsonl", "parquet", "avro", "seq")
BAD_RECORDS = ("fail", "skip")
INPUT_FORMATS = ("text", "records", "csv", "jsonl", "parquet", "avro", "seq")   # see mapred.formats
INPUT_MODES = ("lines", "text", "bytes")


def _identity_mapper(key, value):
    yield key, value


class Job:
    """One map-reduce step.  ``job.run(inputs, output)`` runs it and returns a ``Result``."""

    def __init__(self, mapper: Callable | None = None, *, map_batch: Callable | None = None,
                 combiner: Callable | None = None, reducer: Callable | None = None,
                 reduce_batch: Callable | None = None, input_mode: str = "lines",
                 num_reducers: int = 1, partitioner: Any = None, params: dict | None = None,
                 output_format: str = "text", name: str | None = None,
                 mapper_init: Callable | None = None, mapper_final: Callable | None = None,
                 reducer_init: Callable | None = None, reducer_final: Callable | None = None,
                 errors: str = "strict", max_attempts: int | None = None,
                 sort_buffer_bytes: int | None = None, split_size: int | None = None,
                 map_stream: Callable | None = None, reduce_stream: Callable | None = None,
                 input_format: str | None = None, input_options: dict | None = None,
                 output_options: dict | None = None, bad_records: str = "fail",
                 reduce_fn: Callable | None = None) -> None:
        if reduce_fn is not None:
            combiner, reducer = _reduce_fn_roles(reduce_fn, combiner, reducer, reduce_batch, reduce_stream)
        if sum(f is not None for f in (mapper, map_batch, map_stream)) > 1:
            raise ConfigError("give a job one of mapper, map_batch or map_stream, not several")
        if sum(f is not None for f in (reducer, reduce_batch, reduce_stream)) > 1:
            raise ConfigError("give a job one of reducer, reduce_batch or reduce_stream, not several")
        _check_stream_hooks(map_stream, reduce_stream, mapper_init, mapper_final, reducer_init, reducer_final)
        if input_mode not in INPUT_MODES:
            raise ConfigError(f"input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        for label, fn in (("mapper", mapper), ("map_batch", map_batch), ("combiner", combiner),
                          ("reducer", reducer), ("reduce_batch", reduce_batch), ("partitioner", partitioner),
                          ("map_stream", map_stream), ("reduce_stream", reduce_stream)):
            if fn is not None and not callable(fn):
                raise ConfigError(f"{label} must be callable, got {type(fn).__name__}")
        if not isinstance(num_reducers, int) or num_reducers < 0:
            raise ConfigError(f"num_reducers must be a non-negative int, got {num_reducers!r}")
        if output_format not in OUTPUT_FORMATS:
            raise ConfigError(f"output_format must be one of {OUTPUT_FORMATS}, got {output_format!r}")
        if errors not in ("strict", "replace"):
            raise ConfigError(f"errors must be 'strict' or 'replace', got {errors!r}")
        if bad_records not in BAD_RECORDS:
            raise ConfigError(f"bad_records must be one of {BAD_RECORDS}, got {bad_records!r}")
        if input_format is not None and input_format not in INPUT_FORMATS:
            raise ConfigError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
        self.mapper = mapper if (mapper or map_batch or map_stream) else _identity_mapper
        self.map_batch = map_batch
        self.map_stream = map_stream
        self.combiner = combiner
        self.reducer = reducer
        self.reduce_batch = reduce_batch
        self.reduce_stream = reduce_stream
        self.input_mode = input_mode
        self.num_reducers = num_reducers if (reducer or reduce_batch or reduce_stream) is not None else 0
        self.partitioner = partitioner
        self.params = dict(params or {})
        self.output_format = output_format
        self.name = name or _default_name(mapper or map_batch or map_stream, reducer or reduce_stream)
        self.hooks = {"mapper_init": mapper_init, "mapper_final": mapper_final,
                      "reducer_init": reducer_init, "reducer_final": reducer_final}
        self.errors = errors
        self.max_attempts = max_attempts
        self.sort_buffer_bytes = sort_buffer_bytes
        self.split_size = split_size
        self.input_format = input_format          # None: inferred per file from its extension
        self.input_options = dict(input_options or {})
        self.output_options = dict(output_options or {})
        self.bad_records = bad_records

    @property
    def map_only(self) -> bool:
        """No reduce phase: no reducer, or zero reducers asked for (Hadoop's rule: maps write the output)."""
        return ((self.reducer is None and self.reduce_batch is None and self.reduce_stream is None)
                or self.num_reducers == 0)

    def functions(self) -> dict:
        """The functions a task calls, by role (a fresh set per task; plain jobs share theirs).

        Roles: mapper, map_batch, map_stream, combiner, reducer, reduce_batch,
        reduce_stream, the four ``*_init`` / ``*_final`` hooks and teardown
        (``task.functions.TaskFunctions``).
        """
        return dict(mapper=None if (self.map_batch or self.map_stream) else self.mapper,
                    map_batch=self.map_batch, combiner=self.combiner, reducer=self.reducer,
                    reduce_batch=self.reduce_batch, map_stream=self.map_stream,
                    reduce_stream=self.reduce_stream, **self.hooks)

    def then(self, other: "Job") -> "Pipeline":
        """A pipeline whose next step reads this job's output."""
        return Pipeline([self, other])

    def with_params(self, **params) -> "Job":
        """This job with extra params (the job itself is not changed)."""
        import copy
        clone = copy.copy(self)
        clone.params = {**self.params, **params}
        return clone

    def run(self, inputs, output: str | None = None, *, overwrite: bool = False,
            workers: int | None = None, cluster=None, progress=None, config=None,
            runner: str = "local", spark_master: str | None = None):
        """Run the job on ``inputs`` and return its ``Result``.

        Runs on an embedded local cluster unless ``cluster`` (from
        ``mapred.connect``) is given, or on PySpark with ``runner="spark"``
        (``spark_master`` or the active SparkContext; see
        ``mapred.runners.spark``).  ``output=None`` writes to a temporary
        directory.  Raises ``JobFailed`` when a task fails past its retries.
        """
        import mapred   # the package face, above every layer: the runtime is loaded only now
        return mapred.run(self, inputs, output, overwrite=overwrite, workers=workers, cluster=cluster,
                          progress=progress, config=config, runner=runner, spark_master=spark_master)

    def __repr__(self) -> str:
        return f"Job({self.name!r}, reducers={self.num_reducers})"


def _reduce_fn_roles(reduce_fn, combiner, reducer, reduce_batch, reduce_stream) -> tuple:
    """``reduce_fn=f`` (Spark's ``reduceByKey(f)``): ``f`` folds values as the combiner and the reducer."""
    from mapred.combiners import fold
    if not callable(reduce_fn):
        raise ConfigError(f"reduce_fn must be callable, got {type(reduce_fn).__name__}")
    if reducer is not None or reduce_batch is not None or reduce_stream is not None:
        raise ConfigError("give a job reduce_fn or a reducer, not both (reduce_fn is the reducer)")
    folded = fold(reduce_fn)
    return (combiner if combiner is not None else folded), folded


def _check_stream_hooks(map_stream, reduce_stream, mapper_init, mapper_final, reducer_init, reducer_final) -> None:
    """A stream function owns its whole task, so the per-task hooks of that side have no place to run."""
    if map_stream is not None and (mapper_init or mapper_final):
        raise ConfigError("map_stream owns the whole map task: run set-up and clean-up inside it, "
                          "not in mapper_init/mapper_final")
    if reduce_stream is not None and (reducer_init or reducer_final):
        raise ConfigError("reduce_stream owns the whole reduce task: run set-up and clean-up inside it, "
                          "not in reducer_init/reducer_final")


def _default_name(mapper, reducer) -> str:
    parts = [getattr(f, "__name__", "fn") for f in (mapper, reducer) if f is not None]
    return "+".join(parts) or "identity"


class MRJob:
    """The class form.  Subclass and define ``mapper`` (or ``map_batch``), ``combiner``, ``reducer``.

    One instance is made per task, so ``setup`` may build per-task state (a
    model, an in-mapper dict) that ``mapper_final`` flushes.  Class attributes
    ``NUM_REDUCERS``, ``PARAMS`` and ``OUTPUT_FORMAT`` set the job's options.
    """

    NUM_REDUCERS = 1
    PARAMS: dict = {}
    OUTPUT_FORMAT = "text"
    PARTITIONER = None

    def setup(self) -> None:
        """Called once per task before any record."""

    def teardown(self) -> None:
        """Called once per task after the last record (also when the task fails)."""

    @classmethod
    def to_job(cls, **overrides) -> "Job":
        """The ``Job`` that runs this class, a fresh instance per task."""
        return _ClassJob(cls, **overrides)

    @classmethod
    def run(cls, inputs, output: str | None = None, **kwargs):
        """Run this class's job: ``cls.to_job().run(inputs, output, **kwargs)``."""
        return cls.to_job().run(inputs, output, **kwargs)


_CLASS_METHODS = ("mapper", "map_batch", "combiner", "reducer", "reduce_batch", "mapper_init", "mapper_final",
                  "reducer_init", "reducer_final")


def _defined(cls: type, name: str) -> bool:
    return any(name in vars(base) for base in cls.__mro__ if base is not MRJob and base is not object)


class _ClassJob(Job):
    """A ``Job`` whose functions are the methods of a per-task ``MRJob`` instance."""

    def __init__(self, cls: type, **overrides) -> None:
        present = {n: getattr(cls, n) for n in _CLASS_METHODS if _defined(cls, n)}
        if not {"mapper", "map_batch", "reducer", "reduce_batch"} & set(present):
            raise ConfigError(f"{cls.__name__} defines none of mapper, map_batch, reducer, reduce_batch")
        super().__init__(mapper=present.get("mapper"), map_batch=present.get("map_batch"),
                         combiner=present.get("combiner"), reducer=present.get("reducer"),
                         reduce_batch=present.get("reduce_batch"),
                         num_reducers=overrides.pop("num_reducers", cls.NUM_REDUCERS),
                         partitioner=overrides.pop("partitioner", cls.PARTITIONER),
                         params={**cls.PARAMS, **overrides.pop("params", {})},
                         output_format=overrides.pop("output_format", cls.OUTPUT_FORMAT),
                         name=overrides.pop("name", cls.__name__), **overrides)
        self.job_class = cls

    def functions(self) -> dict:
        """The bound methods of a fresh, set-up instance: per-task state lives in it."""
        instance = self.job_class()
        instance.setup()
        bound = {n: getattr(instance, n) for n in _CLASS_METHODS if _defined(self.job_class, n)}
        if "mapper" not in bound and "map_batch" not in bound:
            bound["mapper"] = _identity_mapper
        return dict(teardown=instance.teardown, **bound)


class Pipeline:
    """Jobs run in order; each step's output is the next step's input."""

    def __init__(self, jobs: Iterable[Job]) -> None:
        self.jobs = list(jobs)
        if not self.jobs:
            raise ConfigError("a Pipeline needs at least one job")
        for j in self.jobs:
            if not isinstance(j, (Job, Pipeline)):
                raise ConfigError(f"Pipeline steps must be Jobs, got {type(j).__name__}")
        self.name = " | ".join(j.name for j in self.jobs)

    def then(self, other: Job) -> "Pipeline":
        """This pipeline with one more step at the end."""
        return Pipeline([*self.jobs, other])

    def run(self, inputs, output: str | None = None, **kwargs):
        """Run the steps in order; each reads the previous step's output (see ``mapred.run``)."""
        import mapred   # as in Job.run
        return mapred.run(self, inputs, output, **kwargs)


def is_job_class(obj: Any) -> bool:
    """Whether ``obj`` is a subclass of ``MRJob`` (not ``MRJob`` itself): a job file may hold one."""
    return inspect.isclass(obj) and issubclass(obj, MRJob) and obj is not MRJob
