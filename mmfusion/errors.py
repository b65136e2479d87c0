"""Errors a user can fix: the entry points print them as one line, without a traceback."""


class MmfusionError(Exception):
    """Bad input or option; the message names the file or option and the reason."""


class DataError(MmfusionError):
    """A data root, folder or file that cannot be used."""


class ConfigError(MmfusionError):
    """An option value that cannot be used."""


def find_user_error(error: BaseException | None) -> MmfusionError | None:
    """The MmfusionError behind an exception, also when Hydra's instantiate wrapped it."""
    while error is not None:
        if isinstance(error, MmfusionError):
            return error
        error = error.__cause__ or error.__context__
    return None
