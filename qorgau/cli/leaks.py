"""``qorgau leaks`` — the unified register of leaked data (issue 8; L-PD-BREACH, L-PD-LEAK-REGISTER).

The group is assembled from one module per part, each adding its commands to :data:`leaks_app`:

* :mod:`qorgau.cli.leaks_incidents` — incident reports, addenda and the regulator's workflow;
* :mod:`qorgau.cli.leaks_ingest` — two-phase ingest of leak files (upload → review → confirm);
* :mod:`qorgau.cli.leaks_screen` — ``qorgau leaks screen FILE``: an operator screens its customers with
  blinded identifiers (the register never sees them).

Exit codes: 0 done, 2 bad input (the message names the field, file or line), 1 setup problems.
"""

from __future__ import annotations

import typer

leaks_app = typer.Typer(help="The unified register of leaked data: incidents, leak files, screening.",
                        no_args_is_help=True)

# Each part registers its commands on import (one line per part, kept in this order).
# --- parts ---
from . import leaks_incidents  # noqa: E402,F401
from . import leaks_ingest  # noqa: E402,F401
from . import leaks_screen  # noqa: E402,F401
