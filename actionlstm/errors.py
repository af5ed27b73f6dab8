"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class UserError(Exception):
    """Bad input from the user (file, option, data): shown as `error: <message>` without a traceback."""
