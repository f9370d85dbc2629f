"""Shared bits of the benchmarks: timing, a scratch directory, a results table."""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from contextlib import contextmanager


@contextmanager
def scratch(prefix: str, keep: str | None = None):
    """A scratch directory removed afterwards (unless ``keep`` names one to reuse)."""
    path = keep or tempfile.mkdtemp(prefix=prefix)
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    finally:
        if keep is None:
            shutil.rmtree(path, ignore_errors=True)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def table(rows: list[tuple], header: tuple) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*["-" * w for w in widths])] +
                     [fmt.format(*map(str, r)) for r in rows])


def load_example(name: str):
    """``examples/<name>.py`` as a module named ``example_<name>`` (benchmarks share names with examples)."""
    import sys
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    import cloudpickle
    cloudpickle.register_pickle_by_value(module)   # executors need not import it
    return module
