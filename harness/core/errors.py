"""Errors the harness raises for bad input; the CLI prints them without a traceback."""
import functools


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


def reports_errors(command):
    """The one CLI error path: a command that raises a HarnessError prints `error: <message>` on
    stderr and exits 1 (no traceback); anything else is a bug and keeps its traceback."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except HarnessError as exc:
            import click
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None
    return run
