"""The builder's error for a build context that cannot be made (shared by context and shipping)."""

from __future__ import annotations


class ContextError(ValueError):
    """A build context that cannot be made (bad profile, missing model file …)."""
