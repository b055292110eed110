"""The one base class of every error a user fixes, in the lowest layer so every layer can use it.

A :class:`UserError` means "the input is wrong, here is how to fix it": a bad flag, config,
file, suite or a missing model. Its message is one line naming the problem and the fix. The
CLI catches this class alone and prints the message as one line with exit code 2; any other
exception is a bug or an outage and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user fixes; the message is one line naming the problem and the fix."""
