"""Training progress on the console: a live bar on a terminal, plain log lines otherwise."""

import sys
import time


def format_duration(seconds):
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes_seconds = f'{rest // 60:02d}:{rest % 60:02d}'
    return f'{hours}:{minutes_seconds}' if hours else minutes_seconds


class Progress:
    """Shows step, losses, images/s and ETA.

    On a terminal the bar is redrawn in place at most a few times a second; when the stream is
    not a terminal (CI, log files, notebooks' captured output) a line is printed every
    `log_every` steps and at the last step.
    """

    def __init__(self, total_steps, batch_size, log_every, stream=None):
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty()
        self.total_steps = total_steps
        self.batch_size = batch_size
        self.log_every = log_every
        # Speed is measured from the first step shown, so tracing and warm-up do not count.
        self.first_step = None
        self.first_time = None
        self.last_draw = 0.0

    def images_per_second(self, step):
        if self.first_step is None or step == self.first_step:
            return 0.0
        elapsed = time.perf_counter() - self.first_time
        return (step - self.first_step) * self.batch_size / elapsed if elapsed > 0 else 0.0

    def line(self, step, losses):
        rate = self.images_per_second(step)
        width = len(str(self.total_steps))
        loss_text = ' '.join(f'{name}={value:.4f}' for name, value in losses.items())
        if rate > 0:
            remaining = (self.total_steps - step) * self.batch_size / rate
            speed = f'{rate:.2f} img/s ETA {format_duration(remaining)}'
        else:
            speed = '-- img/s ETA --:--'
        return f'step {step:>{width}}/{self.total_steps} {loss_text} {speed}'

    def update(self, step, losses):
        if self.first_step is None:
            self.first_step, self.first_time = step, time.perf_counter()
        last = step >= self.total_steps
        if self.interactive:
            now = time.perf_counter()
            if now - self.last_draw < 0.2 and not last:
                return
            self.last_draw = now
            done = int(30 * step / self.total_steps)
            bar = '#' * done + '.' * (30 - done)
            self.stream.write(f'\r[{bar}] {self.line(step, losses)}\x1b[K' + ('\n' if last else ''))
            self.stream.flush()
        elif step % self.log_every == 0 or last:
            self.stream.write(self.line(step, losses) + '\n')
            self.stream.flush()

    def message(self, text):
        """A line that does not get drawn over by the bar."""
        self.stream.write(('\n' if self.interactive else '') + text + '\n')
        self.stream.flush()
