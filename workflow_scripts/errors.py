"""The one error type for input a user must fix; the command line turns it into one line on stderr.

Library code raises BadInput with a message that names the file, key or row and what to do;
`cli.one_line_errors` (on every script's `main`) prints that message alone and exits 1, so a
caller that imports a function can still catch and handle it as an ordinary exception.
"""


class BadInput(Exception):
    """Input the user must fix: a config key, a file, a row. The message is what they read."""
