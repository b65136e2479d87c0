"""Errors a user can fix: the entry points print them as one line, without a traceback."""


class MmfusionError(Exception):
    """Bad input or option; the message names the file or option and the reason."""


class DataError(MmfusionError):
    """A data root, folder or file that cannot be used."""


class ConfigError(MmfusionError):
    """An option value that cannot be used."""
