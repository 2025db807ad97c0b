"""The older, private name of `astrobio.stores.location` (kept because code and tests outside
astrobio import it): the same module object, so patching an attribute here patches it there."""

import sys

from . import location

sys.modules[__name__] = location
