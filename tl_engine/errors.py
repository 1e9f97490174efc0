"""Errors whose messages are written for the person at the keyboard, not for a debugger."""


class ConfigError(ValueError):
    """A RunConfig value that cannot work (k outside 0..7, train_size too large, unknown backbone...)."""


class DataError(ValueError):
    """A dataset that cannot be read or used (unknown name, bad npz keys, empty class, unsafe zip...)."""


class WeightsMissingError(RuntimeError):
    """The package that ships the ImageNet weights is not installed; the message says how to install it."""
