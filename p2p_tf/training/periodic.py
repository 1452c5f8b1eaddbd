"""Work a training run does every so many steps besides training: sample grids of the
generator's translations, scoring it on a held-out split, and keeping its best checkpoint.

Both work on `sampler`, a copy of the generator given the trained one's weights, so that they
never touch the state of the one being trained (BatchNorm statistics, dropout RNG) and cannot
change the training run.
"""

import os

import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf import workdirs
from p2p_tf.datasets import examples as examples_lib
from p2p_tf.datasets import image_files
from p2p_tf.evaluation import metrics, scoring
from p2p_tf.nets import generation, images


def image_grid(generator, inputs, targets):
    """Rows of input | target | output, float [n, S, 3S, 3] in [-1, 1]; the output comes from a
    paper-mode call (dropout on, batch statistics), as at test time in the paper."""
    return images.side_by_side(inputs, targets, generation.generate(generator, inputs, 'paper'))


class Samples:
    """Draws the sample grid of a fixed batch with the sampler and logs it to TensorBoard (in
    the writer that is the default when called); on_sample(step, grid) also gets it, float32
    numpy [n, S, 3S, 3] in [0, 1] (a notebook shows it)."""

    def __init__(self, trainer, sampler, batch, on_sample=None):
        self.trainer, self.sampler, self.batch, self.on_sample = trainer, sampler, batch, on_sample

    def __call__(self, step):
        inputs, targets = self.batch
        self.sampler.set_weights(self.trainer.generator.get_weights())
        grid = image_grid(self.sampler, inputs, targets) * 0.5 + 0.5
        tf.summary.image('input_target_output', grid, step=step,
                         max_outputs=self.trainer.config.num_samples)
        if self.on_sample:
            self.on_sample(step, grid.numpy())


class BestCheckpoint:
    """The training checkpoint with the best score so far, in WORKDIR/best (one kept), and
    its BEST_RECORD, from which a resumed run picks up the best value. A record of another
    metric, split or image count is not comparable: the next evaluation starts a new best."""

    def __init__(self, checkpoint, workdir, metric, split, images):
        self.folder = workdirs.best_dir(workdir)
        self.manager = tf.train.CheckpointManager(checkpoint, self.folder, max_to_keep=1)
        self.terms = dict(metric=metric, split=split, images=images)
        self.record = None
        path = os.path.join(self.folder, workdirs.BEST_RECORD)
        if os.path.exists(path):
            record = workdirs.read_json(path)
            if all(record.get(key) == value for key, value in self.terms.items()):
                self.record = record

    def update(self, step, overall):
        """Saves the checkpoint if overall[metric] ({metric name: value}) beats the best so
        far; returns whether it did."""
        metric = self.terms['metric']
        best = self.record['value'] if self.record else None
        if not metrics.is_better(metric, overall[metric], best):
            return False
        self.manager.save(checkpoint_number=step)
        self.record = dict(step=step, value=overall[metric], **self.terms, **overall)
        workdirs.write_json(os.path.join(self.folder, workdirs.BEST_RECORD), self.record)
        return True


class PeriodicEvaluation:
    """Scores the trained generator on a split in paper mode (scoring.Evaluator), logs
    eval/l1, eval/psnr and eval/ssim to WORKDIR/logs/eval and keeps the best checkpoint.

    It scores `sampler`, a copy of the generator given the trained one's weights, so that
    evaluating never touches the state of the one being trained (BatchNorm statistics,
    dropout RNG) and cannot change the training run.
    """

    def __init__(self, trainer, workdir, split, examples, sampler, progress):
        self.trainer, self.split, self.examples = trainer, split, examples
        self.sampler, self.progress = sampler, progress
        config = trainer.config
        self.evaluator = scoring.Evaluator(sampler, 'paper', config.seed)
        self.writer = tf.summary.create_file_writer(workdirs.logs_dir(workdir, 'eval'))
        self.best = None
        if config.best_metric != config_lib.NO_BEST_METRIC:
            self.best = BestCheckpoint(trainer.checkpoint, workdir, config.best_metric, split,
                                       config.eval_images)

    def __call__(self, step):
        config = self.trainer.config
        self.sampler.set_weights(self.trainer.generator.get_weights())
        scores = self.evaluator(self.examples, config, config.eval_images)
        overall = scores.overall()
        with self.writer.as_default():
            for name, value in overall.items():
                tf.summary.scalar(f'eval/{name}', value, step=step)
        self.writer.flush()
        text = ' '.join(f'{name}={value:.4f}' for name, value in overall.items())
        if self.best and self.best.update(step, overall):
            text += (f' (best {config.best_metric} so far: saved '
                     f'{self.best.manager.latest_checkpoint})')
        self.progress.message(f'eval at step {step} on {scores.count} {self.split} images: {text}')

    def close(self):
        self.writer.close()


def periodic_evaluation(trainer, workdir, data_dir, sampler, progress):
    """A PeriodicEvaluation of the run, or None when eval_every is 0 or the data has no split
    to evaluate (said on the console). Unreadable files of the split are left out with a
    warning, as for training."""
    config = trainer.config
    if not config.eval_every:
        return None
    split = examples_lib.resolve_eval_split(config, data_dir)
    if split is None:
        progress.message(f'{config.dataset} has no val or test split: not evaluating during '
                         'training (set --config.eval_split)')
        return None
    examples = examples_lib.split_examples(config, split, data_dir)
    if isinstance(examples, list):
        examples, unreadable = image_files.readable_examples(examples[:config.eval_images or None])
        for path, reason in unreadable:
            progress.message(f'warning: not evaluating on unreadable image {path}: {reason}')
    return PeriodicEvaluation(trainer, workdir, split, examples, sampler, progress)
