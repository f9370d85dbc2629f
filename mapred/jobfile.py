"""Loading the job a JOBFILE defines, for ``mapred run`` and ``mapred cluster`` submissions.

A JOBFILE is a Python file that defines a ``Job``, a ``Pipeline`` or an
``MRJob`` subclass.  It runs under its own module name (not importable
elsewhere), so cloudpickle ships its functions by value to executors.
"""
from __future__ import annotations

import os
import runpy
import sys

from mapred.errors import ConfigError
from mapred.job import Job, Pipeline, is_job_class


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_params(pairs) -> dict:
    """``["k=v", ...]`` → ``{"k": v}`` with ints and floats recognised."""
    params = {}
    for pair in pairs or ():
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise ConfigError(f"--param {pair!r} is not of the form key=value")
        params[key] = _parse_value(value)
    return params


def load_job(path: str, name: str | None = None, script_args=()):
    """The Job / Pipeline / MRJob class defined in ``path`` (the one named ``name`` if given).

    An ``mrjob.job.MRJob`` subclass counts too: it is run unmodified through
    ``mapred.runners.from_mrjob`` with ``script_args`` as its own
    command line (its options and input paths, as mrjob takes them).
    """
    if not os.path.isfile(path):
        raise ConfigError(f"JOBFILE {path!r} does not exist")
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        namespace = runpy.run_path(path, run_name="__mapred_jobfile__")
    except SyntaxError as exc:
        raise ConfigError(f"JOBFILE {path!r} has a syntax error at line {exc.lineno}: {exc.msg}") from None
    except ImportError as exc:
        raise ConfigError(f"JOBFILE {path!r} failed to import{_line_of(exc, path)}: "
                          f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any error of the user's module body is a bad JOBFILE
        raise ConfigError(f"JOBFILE {path!r} raised while loading{_line_of(exc, path)}: "
                          f"{type(exc).__name__}: {exc}") from None
    from mapred.runners.mrjob_compat import is_mrjob_class
    found = {k: v for k, v in namespace.items()
             if not k.startswith("_") and (isinstance(v, (Job, Pipeline)) or is_job_class(v) or is_mrjob_class(v))}
    # a class counts where it is defined, not where it is imported
    found = {k: v for k, v in found.items()
             if not ((is_job_class(v) or is_mrjob_class(v)) and v.__module__ != "__mapred_jobfile__")}
    if name is not None:
        if name not in found:
            raise ConfigError(f"JOBFILE {path!r} defines no job named {name!r} (it has: {', '.join(found) or 'none'})")
        obj = found[name]
    elif "job" in found:
        obj = found["job"]
    elif len(found) == 1:
        obj = next(iter(found.values()))
    elif not found:
        raise ConfigError(f"JOBFILE {path!r} defines no Job, Pipeline or MRJob subclass")
    else:
        raise ConfigError(f"JOBFILE {path!r} defines several jobs ({', '.join(sorted(found))}); choose one with --job")
    if is_mrjob_class(obj):
        from mapred.runners.mrjob_compat import from_mrjob
        return from_mrjob(obj, script_args, script_path=path)
    return obj.to_job() if is_job_class(obj) else obj


def _line_of(exc: BaseException, path: str) -> str:
    """`` at line N`` of the deepest traceback frame inside the JOBFILE itself, or ``""``."""
    line = None
    tb = exc.__traceback__
    target = os.path.abspath(path)
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename) == target:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" at line {line}" if line else ""


def configure(job, params: dict, reducers: int | None, output_format: str | None, errors: str | None,
              input_format: str | None = None):
    """Apply command-line options to a loaded job or pipeline (the last step gets -r and --format,
    the first --input-format; ``errors="skip"`` quarantines bad records instead of failing)."""
    if isinstance(job, Pipeline):
        steps = [s.with_params(**params) for s in job.jobs]
        steps[-1] = configure(steps[-1], {}, reducers, output_format, errors)
        if input_format is not None:
            steps[0] = configure(steps[0], {}, None, None, None, input_format)
        return Pipeline(steps)
    job = job.with_params(**params)
    if input_format is not None:
        from mapred.formats import check_input_format
        check_input_format(input_format)
        job.input_format = input_format
    if reducers is not None:
        if job.map_only and reducers:
            raise ConfigError("-r/--reducers was given but the job has no reducer (it is map-only)")
        job.num_reducers = reducers    # 0 makes a job with a reducer map-only (Hadoop's rule)
    if output_format is not None:
        job.output_format = output_format
    if errors == "skip":
        job.bad_records = "skip"
    elif errors is not None:
        job.errors = errors
    return job
