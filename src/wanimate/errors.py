"""One error type for everything a user can fix.

The CLI turns a :class:`WanimateError` into one line on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""


class WanimateError(Exception):
    """A problem with the user's input or setup, with a message that says what to fix."""

    exit_code = 2
