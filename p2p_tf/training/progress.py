"""Training progress on the console: a live bar on a terminal (tqdm, fitted to its width), plain
log lines otherwise (CI, log files, notebooks' captured output)."""

import shutil
import sys
import time

import tqdm

# The losses the bar shows before the speed, most telling first (pix2pix's, then the FCN-score
# segmenter's), and after it; it shows as many as the terminal's width leaves room for. The
# log lines and TensorBoard have all of them.
BAR_LOSSES = ('gen_l1', 'disc', 'loss')
BAR_LOSSES_AFTER_SPEED = ('gen_gan',)


def format_duration(seconds):
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes_seconds = f'{rest // 60:02d}:{rest % 60:02d}'
    return f'{hours}:{minutes_seconds}' if hours else minutes_seconds


class Progress:
    """Shows step, losses, images/s and ETA.

    On a terminal a tqdm bar is redrawn in place at most five times a second, never wider than
    the terminal (so it never wraps); when the stream is not a terminal a line with every loss
    is printed every `log_every` steps and at the last step.
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
        self.bar = None

    def images_per_second(self, step):
        if self.first_step is None or step == self.first_step:
            return 0.0
        elapsed = time.perf_counter() - self.first_time
        return (step - self.first_step) * self.batch_size / elapsed if elapsed > 0 else 0.0

    def speed(self, step):
        rate = self.images_per_second(step)
        if rate <= 0:
            return '-- img/s ETA --:--'
        remaining = (self.total_steps - step) * self.batch_size / rate
        return f'{rate:.2f} img/s ETA {format_duration(remaining)}'

    def line(self, step, losses):
        width = len(str(self.total_steps))
        loss_text = ' '.join(f'{name}={value:.4f}' for name, value in losses.items())
        return f'step {step:>{width}}/{self.total_steps} {loss_text} {self.speed(step)}'

    def bar_text(self, step, losses, columns):
        """The text after the bar: the most telling losses first, then the speed and the ETA,
        as many as fit in `columns` (the first always)."""
        pieces = [f'{name}={losses[name]:.4f}' for name in BAR_LOSSES if name in losses]
        pieces += self.speed(step).split(' ETA ')
        pieces[-1] = 'ETA ' + pieces[-1]
        pieces += [f'{name}={losses[name]:.4f}' for name in BAR_LOSSES_AFTER_SPEED
                   if name in losses]
        text = pieces[0]
        for piece in pieces[1:]:
            if len(f'{text} {piece}') > columns:
                break
            text = f'{text} {piece}'
        return text

    def update(self, step, losses):
        if self.first_step is None:
            self.first_step, self.first_time = step, time.perf_counter()
        last = step >= self.total_steps
        if self.interactive:
            columns = shutil.get_terminal_size().columns
            if self.bar is None:
                self.bar = tqdm.tqdm(total=self.total_steps, initial=step - 1, file=self.stream,
                                     ncols=columns, mininterval=0.2, leave=True,
                                     bar_format='{n_fmt}/{total_fmt} |{bar}| {desc}')
            # Room for "step/total |" and a bar of at least 10.
            room = columns - 2 * len(str(self.total_steps)) - 16
            self.bar.set_description_str(self.bar_text(step, losses, room), refresh=False)
            self.bar.update(step - self.bar.n)
            if last:
                self.bar.close()
        elif step % self.log_every == 0 or last:
            self.stream.write(self.line(step, losses) + '\n')
            self.stream.flush()

    def message(self, text):
        """A line that does not get drawn over by the bar."""
        if self.bar is not None and not self.bar.disable:
            self.bar.write(text, file=self.stream)
        else:
            self.stream.write(text + '\n')
            self.stream.flush()
