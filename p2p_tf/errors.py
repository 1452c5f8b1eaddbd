"""The error types every layer raises: bad input from the user, and a run that cannot go on."""


class UserError(Exception):
    """A problem the user can fix; entry points print it on one line and exit with status 2."""


class TrainingError(Exception):
    """Training cannot go on (e.g. the losses diverged); the last good checkpoint is kept.
    Entry points print it on one line and exit with status 1."""


def op_error_reason(error: Exception) -> str:
    """The human part of a TensorFlow op error's message, e.g. 'jpeg::Uncompress failed. Invalid
    JPEG data or crop window.', without the function-node prefix and op suffix."""
    text = error.message.splitlines()[0] if error.message else str(error)
    if '}}' in text:
        text = text.split('}}', 1)[1]
    return text.split(' [Op:', 1)[0].strip()
