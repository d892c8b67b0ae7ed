"""`python -m rolegraph` runs the command line."""

from rolegraph.cli import main

main()
