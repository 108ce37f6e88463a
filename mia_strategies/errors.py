"""User-facing errors: the CLI prints these as one line and exits non-zero, never a traceback."""


class MiaError(Exception):
    """An error caused by user input (a file, an option, a catalog); the message says how to fix it."""

    exit_code: int = 2


class ConfigError(MiaError):
    """A configuration file is missing, unreadable or holds an invalid value."""


class CatalogError(MiaError):
    """A catalog is missing, empty, or does not hold the data asked for."""


class DataValidationError(MiaError):
    """Input data failed validation; nothing was written."""
