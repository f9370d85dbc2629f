"""``python -m mapred`` is the ``mapred`` command."""
from mapred.cli import main

main()
