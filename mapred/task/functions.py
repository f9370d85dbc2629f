"""The user functions one task calls, resolved from either job form (``Job`` or ``MRJob``).

Kept in ``task/`` so running an attempt never imports ``job.py``: a job only
has to answer ``functions()`` with a dict of roles.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


@dataclass
class TaskFunctions:
    """The functions of one task; ``None`` where the job defines no such function."""

    mapper: Optional[Callable] = None
    map_batch: Optional[Callable] = None
    combiner: Optional[Callable] = None
    reducer: Optional[Callable] = None
    reduce_batch: Optional[Callable] = None
    mapper_init: Optional[Callable] = None
    mapper_final: Optional[Callable] = None
    reducer_init: Optional[Callable] = None
    reducer_final: Optional[Callable] = None
    teardown: Optional[Callable] = None
    map_stream: Optional[Callable] = None      # owns the whole split: records in, pairs out
    reduce_stream: Optional[Callable] = None   # owns the whole partition: (key, values) groups in

    @classmethod
    def of(cls, job) -> "TaskFunctions":
        """A fresh set for one task of ``job`` (an ``MRJob`` class job makes its instance here)."""
        return cls(**job.functions())
