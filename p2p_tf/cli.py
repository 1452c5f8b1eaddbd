"""What every command-line entry point shares: flag parsing and turning errors into exit codes.

Bad input (an unknown option, a missing folder, an unreadable image) ends a command with one
line on stderr and exit status 2, never a traceback. A diverged run exits 1; an interrupted one
(after saving its checkpoint) exits 130.
"""

import os
import sys

# TensorFlow's C++ start-up chatter buries the one line that matters; errors still show.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app, flags, logging  # noqa: E402

from p2p_tf import native_logs  # noqa: E402
from p2p_tf.errors import TrainingError, UserError  # noqa: E402

_VERBOSE = flags.DEFINE_boolean(
    'verbose', False, "Show TensorFlow's native start-up lines (CUDA stubs, CPU features), "
    f'hidden otherwise; {native_logs.VERBOSE_ENV}=1 does the same.')

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def program_name():
    """'p2p_tf.train' under `python -m p2p_tf.train`, 'p2p-train' as a console script."""
    spec = getattr(sys.modules.get('__main__'), '__spec__', None)
    if spec is not None and spec.name:
        return spec.name
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else 'p2p_tf'


def fail(message, status=EXIT_BAD_INPUT):
    print(f'{program_name()}: error: {message}', file=sys.stderr, flush=True)
    sys.exit(status)



def fail_on_unknown_config_field(error):
    """ml_collections reports an unknown --config.NAME as an AttributeError or KeyError whose
    text is the quoted name, then a newline and a suggestion."""
    text = str(error.args[0] if error.args else error)
    name, _, suggestion = text.replace('\\n', '\n').partition('\n')
    name, suggestion = name.strip('\\\'" '), suggestion.strip('\\\'" ')
    fail(f'unknown option --config.{name}' + (f' ({suggestion})' if suggestion else ''))


def define_config_file(name, default_path, help_text):
    """`config_flags.DEFINE_config_file`, which already reads --config.FIELD overrides from
    sys.argv while it is being defined: an unknown field there becomes a one-line error."""
    from ml_collections import config_flags
    try:
        return config_flags.DEFINE_config_file(name, default_path, help_text, lock_config=True)
    except (AttributeError, KeyError) as e:
        fail_on_unknown_config_field(e)


def parse_flags(argv, commands=()):
    """Parses the flags; with `commands`, the first positional argument must be one of them."""
    try:
        remaining = flags.FLAGS(argv)
    except flags.Error as e:
        fail(str(e))
    except (AttributeError, KeyError) as e:
        fail_on_unknown_config_field(e)
    arguments = remaining[1:]
    if commands:
        if not arguments:
            fail(f'give a command: {" or ".join(commands)}')
        if arguments[0] not in commands:
            fail(f'unknown command {arguments[0]!r}; commands: {", ".join(commands)}')
        arguments = arguments[1:]
    if arguments:
        fail(f'unexpected arguments: {" ".join(arguments)}')
    return remaining


def run(main, commands=()):
    """Runs `main()` (a function of no arguments that reads parsed flags) as a command; with
    `commands` (subcommand names), runs `main(command)` for the one given first."""
    def guarded_main(argv):
        # absl's INFO default would print every checkpoint write; --verbosity=0 brings it back.
        if not flags.FLAGS['verbosity'].present:
            logging.set_verbosity(logging.WARNING)
        # The flags are checked and TensorFlow not yet loaded: its start-up lines come next.
        if not _VERBOSE.value:
            native_logs.hide_startup_noise()
        try:
            main(*argv[1:2])
        except UserError as e:
            fail(str(e))
        except TrainingError as e:
            fail(str(e), EXIT_FAILED)
        except KeyboardInterrupt:
            fail('interrupted', EXIT_INTERRUPTED)
    app.run(guarded_main, flags_parser=lambda argv: parse_flags(argv, commands))
