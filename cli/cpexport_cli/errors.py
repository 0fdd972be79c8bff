"""What a command can end with, and the exit code scripts see for each."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes of every command (the README's runbook and scripts rely on them)."""

    OK = 0
    NOT_OK = 1  # the command ran and the answer is "no": a failed execution, a failing check, a refusal
    BAD_INPUT = 2  # bad options or input (click's own usage errors are 2 as well): nothing was started or changed
    UNREACHABLE = 3  # the stack or a service could not be found or read


class CliError(Exception):
    """A problem the command reports in words and with an exit code, without a traceback."""

    exit_code = ExitCode.NOT_OK


class InvalidInput(CliError):
    """The options or the request are invalid: nothing was started or changed."""

    exit_code = ExitCode.BAD_INPUT


class DeploymentNotFound(CliError):
    """The stack (or an output the command needs) does not exist where the command looked."""

    exit_code = ExitCode.UNREACHABLE


class ServiceUnreachable(CliError):
    """An AWS call failed (credentials, permissions, endpoint): the command could not read or act."""

    exit_code = ExitCode.UNREACHABLE


class Refused(CliError):
    """The command refused to act because acting would not be safe; it says what it checked."""

    exit_code = ExitCode.NOT_OK
