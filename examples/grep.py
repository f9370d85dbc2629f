"""Grep: the lines matching a regular expression, with their file offsets.  Map-only.

    mapred run examples/grep.py INPUT... -o OUT --param pattern='err(or)?'

Output lines are ``offset<TAB>line``; ``--param ignore_case=1`` matches case-insensitively.
"""
import re

import mapred


def grep(offset, line):
    params = mapred.context().params
    pattern = params.get("pattern")
    if pattern is None:
        raise mapred.errors.ConfigError("grep needs --param pattern=REGEX")
    flags = re.IGNORECASE if params.get("ignore_case") else 0
    if re.search(str(pattern), line, flags):
        yield offset, line


job = mapred.Job(mapper=grep, name="grep")


if __name__ == "__main__":   # python examples/grep.py [INPUT... -o OUT]
    from mapred.cli.run import example_main
    example_main(__file__, ("pattern=MapReduce",))
