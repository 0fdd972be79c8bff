"""`python -m cpexport_cli`: the same as the installed `cpexport` console script."""

from cpexport_cli.app import main

main()
