"""Exceptions that faultreg raises for bad input.

The command line prints these as one error line and exits with status 2, so every message
names the offending value and the fix.
"""


class FaultregError(Exception):
    """Base class of all faultreg input errors."""


class ConfigError(FaultregError):
    """Invalid or inconsistent configuration value."""


class DataError(FaultregError):
    """Missing, truncated or corrupt dataset file."""


class FaultMapError(FaultregError):
    """Fault map that does not match its hash, its spec or the model it is applied to."""
