"""The one error type bayesmix raises for bad input."""

__all__ = ["BayesmixError", "first_line"]


class BayesmixError(ValueError):
    """Bad input: the message is one line that names the problem and where it is.

    The CLI prints it as ``bayesmix: error: <message>`` and exits with status 2.
    """


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none), for a
    one-line :class:`BayesmixError` that wraps it."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
