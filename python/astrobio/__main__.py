"""`python -m astrobio` is the `astrobio` command."""

from .cli import console

console()
