"""The step loop every trainer runs (pix2pix's and the FCN-score segmenter's): steps until the
total, losses kept on the device and fetched only when needed, log lines, periodic work,
checkpoints, and a clean stop on Ctrl-C / SIGTERM.

The host does not wait for the device at every step: the step's loss tensors are kept and
fetched together every `log_every` steps, before periodic work and before each checkpoint
(flax's examples collect metrics the same way). A checkpoint is written only after every loss
up to its step was seen to be finite, so a diverged run never saves over its last good state.
"""

import dataclasses
import math
import signal
import threading
from collections.abc import Callable, Iterable

import numpy as np

from p2p_tf.errors import TrainingError


class StopSignal:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps, so the run saves a
    checkpoint before exiting. Only installed on the main thread (not in notebook workers)."""

    def __init__(self):
        self.received = None
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class LossWindow:
    """The losses of the steps since the last log line: per-step tensors on the device until
    `fetch`, then running sums on the host, whose means are what is shown and logged (one
    batch-1 step is too noisy to read a trend from)."""

    def __init__(self, names):
        self.names = tuple(names)
        self.pending = []  # [(step, {name: scalar tensor})], not fetched yet.
        self.reset()
        self.last_means = {}

    def reset(self):
        self.sums, self.count = dict.fromkeys(self.names, 0.0), 0

    def add(self, step, losses):
        self.pending.append((step, losses))

    def fetch(self, describe_last_good):
        """Brings the pending losses to the host and adds them to the window. Raises
        TrainingError naming the first step with a non-finite loss and the steps checked;
        describe_last_good(): the last good checkpoint, in words, for that message."""
        if not self.pending:
            return
        steps = [step for step, _ in self.pending]
        values = {name: np.asarray([losses[name] for _, losses in self.pending], np.float64)
                  for name in self.names}
        first, last = steps[0], steps[-1]
        self.pending = []
        finite = np.all([np.isfinite(column) for column in values.values()], axis=0)
        if not finite.all():
            index = int(np.argmin(finite))
            bad = ', '.join(f'{name}={column[index]}' for name, column in values.items()
                            if not math.isfinite(column[index]))
            raise TrainingError(
                f'non-finite loss at step {steps[index]} ({bad}; steps {first}-{last} checked '
                f'together); stopped without saving. Last good checkpoint: '
                f'{describe_last_good()}')
        for name, column in values.items():
            # Summed one step at a time in float64, as floats fetched step by step would be.
            for value in column:
                self.sums[name] += float(value)
        self.count += len(steps)
        self.last_means = self.means()

    def means(self):
        """{name: mean over the fetched steps of the window}; the last means when it is empty."""
        if not self.count:
            return self.last_means
        return {name: total / self.count for name, total in self.sums.items()}


@dataclasses.dataclass
class Periodic:
    """Work done every `every` steps (0: never) and at the last step, after the losses up to
    that step were seen finite; skipped when the run is being stopped."""
    every: int
    run: Callable[[int], None]

    def due(self, step, last):
        return bool(self.every) and (step % self.every == 0 or last)


def run_steps(train_step: Callable, batches: Iterable, step: int, total_steps: int,
              loss_names, progress, log_every: int, on_log: Callable | None = None,
              periodic: tuple = (), save: Callable | None = None, save_every: int = 0,
              describe_last_good: Callable = lambda: 'none written yet') -> int:
    """Runs train_step(*batch) -> {name: scalar tensor} for each batch from `step` (the steps
    already done) until total_steps; returns the last step.

    progress: a training.progress.Progress; on_log(step, means): every log_every steps and at the
    last, with the mean losses since the previous call; periodic: Periodic work; save(step): writes
    a checkpoint and returns its path, every save_every steps, at the last step and when a stop
    signal arrives (the run then ends with KeyboardInterrupt). Non-finite losses end the run with a
    TrainingError before anything is saved.
    """
    window = LossWindow(loss_names)
    with StopSignal() as stop:
        for batch in batches:
            window.add(step + 1, train_step(*batch))
            step += 1
            last = step >= total_steps
            # Read once: a signal can arrive at any moment, and what is saved must match it.
            stopping = stop.received
            log = step % log_every == 0 or last
            due = [] if stopping else [work for work in periodic if work.due(step, last)]
            saving = save is not None and (
                (save_every and step % save_every == 0) or last or stopping)
            if log or due or saving:
                window.fetch(describe_last_good)
            progress.update(step, window.means())
            if log:
                if on_log:
                    on_log(step, window.means())
                window.reset()
            for work in due:
                work.run(step)
            saved = save(step) if saving else None
            if stopping:
                saved = f'saved {saved}' if save is not None else 'the chief saves'
                progress.message(f'stopped by signal {stopping} at step {step}; {saved}')
                raise KeyboardInterrupt
            if last:
                break
    return step
