"""`python -m astrobio.train`: train the default model on the default dataset (see --help)."""

from .cli import main

raise SystemExit(main())
