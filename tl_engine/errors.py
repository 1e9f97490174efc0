"""Errors whose messages are written for the person at the keyboard, not for a debugger.

Everything a person can fix (a setting, a file, a missing package) is a :class:`UserError`: the CLI prints it
as one line, the pages show it as a message, and neither shows a traceback. Anything else is a bug.
"""


class UserError(ValueError):
    """Something the person at the keyboard can fix; the message says what to do."""


class ConfigError(UserError):
    """A RunConfig value that cannot work (k outside 0..7, train_size too large, unknown backbone...)."""


class DataError(UserError):
    """A dataset that cannot be read or used (unknown name, bad npz keys, empty class, unsafe zip...)."""


class WeightsMissingError(UserError):
    """The package that ships the ImageNet weights is not installed; the message says how to install it."""


class StoreError(UserError):
    """The results store cannot be read or written (damaged file, full disk); the app runs without reuse."""


class StorageError(UserError):
    """This server cannot write what it must keep (full disk, read-only or unwritable folder); nothing the
    person gave is wrong or damaged, and the message never names a server path."""
