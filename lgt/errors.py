"""The one exception type for problems the user can fix.

It lives in a leaf module with no imports so that every package
(`tuning_targets`, `agents`, `graphs`, `lgt`) can raise it without
breaking the one-way import rule drawn in ARCHITECTURE.md.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input, missing data or an unreachable endpoint.

    The CLI prints its message as one line on stderr and exits with code 2.
    Anything else that escapes is a bug.
    """
