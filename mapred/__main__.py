"""``python -m mapred`` is the ``mapred`` command."""
from .cli import main

main()
