"""`python -m steward.cli`: the same command as the installed `steward`."""

from steward.cli import main

main()
