"""Entry point of an executor process: ``python -m mapred.task.child FD``.

Kept apart from ``executor_pool`` so the child never re-imports the parent's
``__main__`` (user scripts need no ``if __name__ == "__main__"`` guard).
"""
import sys
from multiprocessing.connection import Connection

from mapred.task.pool import _executor_main

if __name__ == "__main__":
    _executor_main(Connection(int(sys.argv[1])))
