"""TensorFlow's native start-up lines, hidden from the commands' stderr.

On a machine without a GPU every TensorFlow process prints, from C++ and straight to file
descriptor 2, lines such as `E0000 ... cuda_platform.cc:52] failed call to cuInit: ...` that
look like errors and are not. TF_CPP_MIN_LOG_LEVEL cannot hide them without hiding real errors
too, so the commands route descriptor 2 through a pipe that drops exactly those lines and
passes everything else (Python's warnings and tracebacks, our one-line errors, any other
native message) through unchanged and in order. `--verbose` or P2P_TF_VERBOSE=1 shows them.
Standard library only: it runs before TensorFlow is imported.
"""

import atexit
import os
import re
import sys
import threading

VERBOSE_ENV = 'P2P_TF_VERBOSE'
# The start-up chatter of TensorFlow's CUDA stubs and CPU feature checks, its notice that
# oneDNN is on (by default on CPUs with AVX-512 VNNI or newer), and absl's note that precedes
# them; nothing else.
STARTUP_NOISE = re.compile(
    r'(WARNING: All log messages before absl::InitializeLog\(\) is called are written to '
    r'STDERR|[IWE]\d{4} [\d:.]+ +\d+ ((cudart_stub|cuda_platform|cuda_executor|cuda_diagnostics'
    r'|cuda_fft|cuda_dnn|cuda_blas|cpu_feature_guard)\.cc:\d+\] .*'
    r'|port\.cc:\d+\] oneDNN custom operations are on\. .*))\n?')

_real_stderr = None  # A descriptor of the real stderr while the filter runs.


def real_stderr():
    """A descriptor of the process's real stderr (for child processes that must be heard even
    if this one is killed), or 2 when no filter runs."""
    return _real_stderr if _real_stderr is not None else 2


def hide_startup_noise():
    """Starts the filter on descriptor 2 for the rest of the process (once; not when verbose
    output is asked for). At exit the pipe is drained before the process ends."""
    global _real_stderr
    if _real_stderr is not None or os.environ.get(VERBOSE_ENV) == '1':
        return
    sys.stderr.flush()
    _real_stderr = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    output = os.dup(_real_stderr)

    def pump():
        with os.fdopen(read_end, 'rb') as pipe:
            for line in pipe:
                if not STARTUP_NOISE.fullmatch(line.decode(errors='replace')):
                    os.write(output, line)

    thread = threading.Thread(target=pump, name='stderr-filter', daemon=True)
    thread.start()

    def drain():
        sys.stderr.flush()
        os.dup2(_real_stderr, 2)  # Closes the pipe's last writer here: the pump reads to EOF.
        thread.join(timeout=2)

    atexit.register(drain)
