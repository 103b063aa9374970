"""The warning category of checks that pass with a caveat; `--aksai-strict` turns it into a failure."""


class AksaiWarning(UserWarning):
    """A check passed with a caveat a platform team should know about (fails under --aksai-strict)."""

    __module__ = "pytest_aksai"
