"""``python -m core …`` is the old name of the CLI: it says where the command moved and runs it.

Kept for one release (until 0.3); the CLI is ``studio …`` / ``python -m cli …`` (package ``cli/``).
The new entry point replaces this process (``exec``: same process id, so signals and ``kill`` reach
the command itself), so core imports nothing above it.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Print the new name on stderr, then become ``python -m cli`` with the same arguments."""
    args = list(sys.argv[1:] if argv is None else argv)
    print("note: `python -m core` moved to `studio` (or `python -m cli`); this alias goes in 0.3",
          file=sys.stderr)
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "cli", *args])
    return 0  # not reached: execv does not return


if __name__ == "__main__":
    sys.exit(main())
