"""`python -m astrobio` is the `astrobio` command."""

from .cli import main

raise SystemExit(main())
