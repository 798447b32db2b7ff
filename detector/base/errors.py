"""The one exception type the lab raises for bad input a user can fix."""


class LabError(ValueError):
    """Bad input or state a user can fix: a wrong path, an unreadable file, a mismatched run.

    The message names the file or option and what is wrong with it. The CLI prints it
    without a traceback.
    """
