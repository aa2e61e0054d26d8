"""Errors the harness raises for bad input; the CLI prints them without a traceback."""


class HarnessError(Exception):
    """A user-facing error: bad input, bad config, missing plugin or model."""


class DataError(HarnessError):
    """A dataset, qrels or run file is malformed; the message names the file and line."""


class ConfigError(HarnessError):
    """A config is invalid; the message names the field path and the allowed values."""


class PluginError(HarnessError):
    """A plugin is unknown or its dependencies are missing; the message names the choices."""


class ModelUnavailableError(HarnessError):
    """A model can be neither found locally nor downloaded (e.g. offline)."""
