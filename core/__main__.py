"""``python -m core …`` is the old name of the CLI: it says where the command moved and runs it.

Kept for one release (until 0.3); the CLI is ``studio …`` / ``python -m cli …`` (package ``cli/``).
The new entry point runs as a program of its own, so core imports nothing above it.
"""

from __future__ import annotations

import subprocess
import sys


def main(argv: list[str] | None = None) -> int:
    """Print the new name on stderr, then run ``python -m cli`` with the same arguments."""
    args = list(sys.argv[1:] if argv is None else argv)
    print("note: `python -m core` moved to `studio` (or `python -m cli`); this alias goes in 0.3",
          file=sys.stderr)
    return subprocess.call([sys.executable, "-m", "cli", *args])


if __name__ == "__main__":
    sys.exit(main())
