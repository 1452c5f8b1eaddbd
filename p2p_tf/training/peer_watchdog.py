"""A watchdog process for the start of a multi-worker run (p2p_tf/training/distribution.py).

Creating a MultiWorkerMirroredStrategy waits inside TensorFlow, holding Python's global lock and
with no time limit, until every worker of TF_CONFIG has joined; TensorFlow also takes over
SIGTERM. A thread of the waiting process cannot run, so the watch runs in a small child process
(standard library only, started as a script so it does not import TensorFlow): if the parent has
not closed the child's stdin within the timeout, the child says which peers do not answer and
ends the parent with SIGKILL. A parent that ends first closes the pipe, and the child exits.
"""

import os
import select
import signal
import socket
import subprocess
import sys

# How long, by default, a multi-worker run waits for all its workers to join before it gives up.
DEFAULT_TIMEOUT_SECONDS = 120


def unreachable(addresses, timeout=1.0):
    """The 'host:port' addresses that refuse or drop a TCP connection now."""
    missing = []
    for address in addresses:
        host, _, port = address.rpartition(':')
        try:
            socket.create_connection((host.strip('[]'), int(port)), timeout=timeout).close()
        except OSError:
            missing.append(address)
    return missing


class Watchdog:
    """Context manager: ends this process with a message if its body has not finished within
    `timeout` seconds. `task` names this process in the message; `peers` are the addresses of
    the other workers."""

    def __init__(self, timeout, task, peers):
        self.arguments = [str(os.getpid()), str(timeout), task, *peers]

    def __enter__(self):
        from p2p_tf import native_logs  # Here, not at the top: the child runs this file alone.
        self.child = subprocess.Popen([sys.executable, os.path.abspath(__file__), *self.arguments],
                                      stdin=subprocess.PIPE,
                                      # Heard even after it ends this process.
                                      stderr=native_logs.real_stderr())
        return self

    def __exit__(self, *exc):
        self.child.stdin.close()
        self.child.wait()


def watch(parent, timeout, task, peers):
    """The child's side: waits for stdin to close; after `timeout` seconds, reports and kills."""
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if ready:
        return
    missing = unreachable(peers)
    who = (f'no answer from {", ".join(missing)}' if missing else
           'every address answers, but not all of them as workers of this cluster')
    print(f'error: multi_worker: {task} waited {timeout:g} s for the other workers of TF_CONFIG '
          f'to join ({who}); start every worker with the same cluster and its own task, and '
          'check the addresses and firewalls (--peer_timeout sets the wait)',
          file=sys.stderr, flush=True)
    os.kill(parent, signal.SIGKILL)


if __name__ == '__main__':
    parent_pid, seconds, task_name, *peer_addresses = sys.argv[1:]
    watch(int(parent_pid), float(seconds), task_name, peer_addresses)
