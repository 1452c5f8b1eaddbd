"""A pix2pix training run: `train(config, workdir)` is what `python -m p2p_tf.train` runs; a
notebook can call it too, or drive a `trainer.Trainer` step by step.

It resolves the config once (distribution.resolve_run), prepares the workdir, restores the
latest checkpoint, and runs the shared step loop (loop.py) with the run's logging, sample
grids, periodic evaluation and best checkpoint (periodic.py) and checkpoints.
"""


import contextlib
import sys

import keras
import ml_collections
import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf import workdirs
from p2p_tf.datasets import examples as examples_lib
from p2p_tf.datasets import image_files, input_pipeline, value_ranges
from p2p_tf.errors import UserError
from p2p_tf.nets import models
from p2p_tf.training import distribution, initialization, loop, periodic
from p2p_tf.training.progress import Progress
from p2p_tf.training.trainer import Trainer

# Fields that may change when a run is resumed; any other difference is an error (init_from
# of a resumed run is put back to the one it started with, initialization.for_workdir).
RESUMABLE_CHANGES = ('steps', 'epochs', 'decay_epochs', 'log_every', 'sample_every',
                     'checkpoint_every', 'keep_checkpoints', 'num_samples', 'cache_megabytes',
                     'precision', 'xla', 'fused_adam', 'matmul_weight_gradients',
                     'fast_transposed_passes', 'fused_batch_norm',
                     'eval_every', 'eval_split', 'eval_images', 'best_metric', 'sync_batch_norm')


def prepare_workdir(config, workdir):
    """Creates the workdir, refuses one that holds a run with an incompatible config, and
    writes the resolved config there."""
    workdirs.prepare(config, workdir, RESUMABLE_CHANGES)


def train(config: ml_collections.ConfigDict, workdir: str, data_dir: str | None = None,
          stream=None, strategy: tf.distribute.Strategy | None = None,
          on_sample=None) -> Trainer:
    """Trains (or resumes) the run in `workdir`; returns the Trainer.

    config: a ConfigDict from config.get_config() plus overrides (resolved here).
    strategy: a tf.distribute strategy (distribution.create_strategy); default: the current
      one. Under a multi-worker strategy every worker calls train with the same arguments and
      only the chief writes to `workdir`; resuming needs the chief's workdir readable by all.
    on_sample: called as on_sample(step, grid) on the chief each time sample images are drawn
      (every sample_every steps and at the end); grid is float32 [n, S, 3S, 3] in [0, 1],
      rows of input | target | output (a notebook shows it).
    """
    strategy = strategy or tf.distribute.get_strategy()
    config = distribution.resolve_run(config, strategy)
    chief = distribution.is_chief(strategy)
    # The data is checked before anything is written; then a workdir has one writer: a
    # second train on it stops here.
    data = examples_lib.training_data(config, data_dir)
    # The files' value types and ranges join the config, and config.json with it.
    config = value_ranges.resolve(config, *data[:2])
    lock = (workdirs.TrainingLock(workdir, lambda text: print(text, file=sys.stderr, flush=True))
            if chief else contextlib.nullcontext())
    with lock:
        return train_locked(config, workdir, data_dir, data, stream, strategy, on_sample, chief)


def train_locked(config, workdir, data_dir, data, stream, strategy, on_sample, chief):
    """train() of a config resolved for `strategy`, holding the workdir's lock if chief;
    data: examples.training_data of the config."""
    train_examples, sample_examples, unreadable = data
    config = initialization.for_workdir(
        config, workdir, lambda text: print(text, file=sys.stderr, flush=True))
    if chief:
        prepare_workdir(config, workdir)

    total_steps, decay_steps = config_lib.schedule_steps(config, len(train_examples))
    keras.utils.set_random_seed(config.seed)
    trainer = Trainer(config, total_steps, decay_steps, strategy)
    checkpoints = workdirs.checkpoints_dir(workdir)
    progress = Progress(total_steps, config.batch_size, config.log_every, stream)
    for path, reason in unreadable:
        progress.message(f'warning: skipping unreadable image {path}: {reason}')
    if unreadable:
        progress.message(f'skipped {len(unreadable)} unreadable training image(s)')
    # The newest checkpoint that restores: a damaged one is set aside with a warning.
    latest = workdirs.restore_newest_good(trainer.checkpoint, checkpoints, progress.message,
                                          move=chief)
    # Saving reads each mirrored variable's local copy and runs no collective (the networks,
    # Adam and the RNG states have no sync-on-read variables), so the other workers of a
    # multi-worker run need not take part, and write nothing.
    manager = tf.train.CheckpointManager(
        trainer.checkpoint, checkpoints, max_to_keep=config.keep_checkpoints,
        step_counter=trainer.step) if chief else None
    start_step = int(trainer.step.numpy())
    if latest:
        progress.message(f'resumed from {latest} at step {start_step}')
    elif config.init_from:
        initialization.initialize(trainer, config, progress.message)
    distribution.check_workers_agree(strategy, start_step)
    if start_step >= total_steps:
        progress.message(f'{workdir} is already trained to step {start_step} of {total_steps}')
        return trainer
    progress.message(f'training {config.dataset} ({config.direction}, '
                     f'{len(train_examples)} pairs) for {total_steps} steps of batch '
                     f'{config.batch_size}; workdir {workdir}')
    if not distribution.is_default(strategy):
        progress.message(f'{distribution.describe(strategy)}; '
                         f'{distribution.batch_description(config, strategy)}')

    # Sample grids and evaluations are the chief's, like every other file of the run.
    samples = evaluate = None
    if chief:
        sample_batch = input_pipeline.eval_dataset(
            sample_examples, config, batch_size=len(sample_examples)).get_single_element()
        # A copy of the generator draws the samples and is scored (periodic.py says why).
        sampler = models.generator_from_config(config)
        samples = periodic.Samples(trainer, sampler, sample_batch, on_sample)
        evaluate = periodic.periodic_evaluation(trainer, workdir, data_dir, sampler, progress)
    writer = (tf.summary.create_file_writer(workdirs.logs_dir(workdir, 'train')) if chief
              else tf.summary.create_noop_writer())
    with writer.as_default():
        tf.summary.scalar('data/skipped_unreadable_images', len(unreadable), step=start_step)
    try:
        def make_dataset(batch_size, shards, shard):
            return input_pipeline.train_dataset(
                train_examples, config, start_example=start_step * config.batch_size,
                batch_size=batch_size, shards=shards, shard=shard)
        dataset = distribution.distribute_dataset(strategy, make_dataset, config.batch_size)
        with writer.as_default():
            run_loop(trainer, dataset, manager, progress, total_steps, samples, evaluate)
    except tf.errors.InvalidArgumentError:
        # Only files can turn out to be truncated; the builder's records all decoded.
        bad = image_files.undecodable_example(train_examples) or (
            evaluate and image_files.undecodable_example(evaluate.examples))
        if bad:
            raise UserError(f'cannot decode image {bad[0]}: {bad[1]}') from None
        raise
    finally:
        writer.close()
        if evaluate:
            evaluate.close()
    return trainer


def run_loop(trainer, dataset, manager, progress, total_steps, samples=None, evaluate=None):
    """Trains from trainer.step to total_steps on `dataset` (distributed by the trainer's
    strategy) with the shared step loop, logging into the default summary writer, drawing
    `samples` (periodic.Samples) every sample_every steps, calling evaluate(step) every
    eval_every steps and checkpointing with `manager`, each if given."""
    config = trainer.config

    def log(step, means):
        for name, value in means.items():
            tf.summary.scalar(f'loss/{name}', value, step=step)
        tf.summary.scalar('learning_rate', trainer.generator_optimizer.learning_rate, step=step)
        tf.summary.scalar('images_per_second', progress.images_per_second(step), step=step)

    def save(step):
        try:
            return manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as e:
            message = workdirs.disk_full_message(manager.directory, e)
            if message:
                workdirs.remove_partial_save(manager.directory, step)
                raise UserError(message) from None
            raise

    work = []
    if samples:
        work.append(loop.Periodic(config.sample_every, samples))
    if evaluate:
        work.append(loop.Periodic(config.eval_every, evaluate))
    return loop.run_steps(
        trainer.train_step, dataset, int(trainer.step.numpy()), total_steps, trainer.loss_names,
        progress, config.log_every, on_log=log, periodic=tuple(work),
        save=save if manager else None, save_every=config.checkpoint_every,
        describe_last_good=lambda: (manager and manager.latest_checkpoint) or 'none written yet')
