"""The one error type bayesmix raises for bad input."""

__all__ = ["BayesmixError"]


class BayesmixError(ValueError):
    """Bad input: the message is one line that names the problem and where it is.

    The CLI prints it as ``bayesmix: error: <message>`` and exits with status 2.
    """
