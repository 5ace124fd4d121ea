"""``python -m wanimate`` is the ``wanimate`` command."""

from wanimate.cli import main

main()
