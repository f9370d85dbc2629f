"""Runners at the edges: mrjob scripts in (``from_mrjob``), mapred jobs out to Spark (``spark``).

Both are optional integrations: ``mrjob`` and ``pyspark`` are imported only
when these modules are used (``pip install "mapred[mrjob]"`` / ``"mapred[spark]"``).
"""
from __future__ import annotations


def from_mrjob(job_class, args=()):
    """A mapred ``Job`` or ``Pipeline`` that runs the ``mrjob.job.MRJob`` subclass ``job_class`` unmodified."""
    from mapred.runners.mrjob_compat import from_mrjob as _from_mrjob
    return _from_mrjob(job_class, args)


__all__ = ["from_mrjob"]
