"""The output commit protocol: attempts write under ``_temporary``; the master's choice is renamed in.

An attempt writes ``OUT/_temporary/<attempt>/part-NNNNN``.  When the master
decides that attempt is its task's first success, ``commit_task`` renames the
part file to ``OUT/part-NNNNN``; losers and failures are deleted.  Only after
every task is committed does ``commit_job`` write ``_SUCCESS`` and remove
``_temporary`` — so output without ``_SUCCESS`` is never mistaken for complete.
"""
from __future__ import annotations

from mapred.errors import OutputExistsError
from mapred.io.fs import get_fs
from mapred.io.outputs import SUCCESS, TEMPORARY, temp_dir, write_success


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse an existing output unless ``overwrite``; then make the directory fresh."""
    fs = get_fs(output)
    if fs.exists(output):
        if not overwrite:
            raise OutputExistsError(f"output path {output!r} already exists (pass --overwrite to replace it)")
        fs.delete(output, recursive=True)
    fs.makedirs(fs.join(output, TEMPORARY))


def commit_task(output: str, attempt: str, files: list[str]) -> list[str]:
    """Move an attempt's part files into the output directory; returns the final paths."""
    fs = get_fs(output)
    src_dir = temp_dir(output, attempt)
    final = []
    for name in files:
        dst = fs.join(output, name)
        if fs.exists(dst):
            fs.delete(dst)
        fs.rename(fs.join(src_dir, name), dst)
        final.append(dst)
    fs.delete(src_dir, recursive=True)
    return final


def discard_task(output: str, attempt: str) -> None:
    """Delete an attempt's temporary output (a loser, a failure)."""
    fs = get_fs(output)
    fs.delete(temp_dir(output, attempt), recursive=True)


def commit_job(output: str, info: dict) -> None:
    """Write ``_SUCCESS`` and remove ``_temporary``: the output is complete."""
    fs = get_fs(output)
    fs.delete(fs.join(output, TEMPORARY), recursive=True)
    write_success(output, info)


def abort_job(output: str) -> None:
    """A failed job leaves no ``_SUCCESS`` and no temporary files; committed parts are removed too."""
    fs = get_fs(output)
    if fs.exists(output):
        fs.delete(output, recursive=True)


def is_committed(output: str) -> bool:
    """Whether the output has its ``_SUCCESS`` mark."""
    fs = get_fs(output)
    return fs.exists(fs.join(output, SUCCESS))
