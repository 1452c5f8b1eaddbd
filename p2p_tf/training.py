"""The training loop: models, optimizers, the tf.function train step, checkpoints and logs.

`train(config, workdir)` is what `python -m p2p_tf.train` runs; a notebook can call it too, or
drive a `Trainer` step by step. Everything that must survive a restart (both networks, both Adam
optimizers, the step counter and the dropout RNG state) lives in `Trainer.checkpoint`.
Every eval_every steps the generator is scored on a held-out split (`PeriodicEvaluation`) and
the checkpoint with the best score so far is kept in WORKDIR/best (`BestCheckpoint`).
"""

import json
import math
import os
import signal
import threading

import keras
import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf import (datasets, distribution, evaluation, images, inference, input_pipeline,
                    losses, metrics, models, performance, tfds_builder)
from p2p_tf.errors import UserError
from p2p_tf.progress import Progress

LOSS_NAMES = ('gen_total', 'gen_gan', 'gen_l1', 'disc', 'disc_real', 'disc_fake')
# Fields that may change when a run is resumed; any other difference is an error.
RESUMABLE_CHANGES = ('steps', 'epochs', 'decay_epochs', 'log_every', 'sample_every',
                     'checkpoint_every', 'keep_checkpoints', 'num_samples', 'cache_megabytes',
                     'precision', 'xla', 'fused_adam', 'matmul_weight_gradients',
                     'eval_every', 'eval_split', 'eval_images', 'best_metric', 'sync_batch_norm')
# WORKDIR/best/BEST_RECORD: step, split and scores of the best checkpoint.
BEST_RECORD = 'best.json'


class TrainingError(Exception):
    """Training cannot go on (e.g. the losses diverged); the last good checkpoint is kept."""


class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant rate, then linear decay to zero over the last `decay_steps` of `total_steps`
    (the reference code's n_epochs / n_epochs_decay policy)."""

    def __init__(self, learning_rate, total_steps, decay_steps):
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.decay_steps = decay_steps

    def __call__(self, step):
        if not self.decay_steps:
            return tf.constant(self.learning_rate, tf.float32)
        remaining = tf.cast(self.total_steps - step, tf.float32)
        return self.learning_rate * tf.clip_by_value(remaining / self.decay_steps, 0.0, 1.0)

    def get_config(self):
        return dict(learning_rate=self.learning_rate, total_steps=self.total_steps,
                    decay_steps=self.decay_steps)


def unwrapped(optimizer):
    """The Adam inside a LossScaleOptimizer, or the optimizer itself."""
    return getattr(optimizer, 'inner_optimizer', optimizer)


class Trainer:
    """Both networks, both optimizers and the step counter, created under the current
    tf.distribute strategy, with one train step and one checkpoint covering all of them.
    config.batch_size is the global batch (distribution.resolve checks that it splits)."""

    def __init__(self, config, total_steps, decay_steps=0, strategy=None):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.config = config = distribution.resolve(config, self.strategy)
        self.precision = performance.choose_precision(config.precision)
        with self.strategy.scope():
            options = dict(dtype=self.precision,
                           matmul_weight_gradients=config.matmul_weight_gradients,
                           synchronized_batch_norm=config.sync_batch_norm == 'on')
            self.generator = models.generator_from_config(config, **options)
            self.discriminator = models.discriminator_from_config(config, **options)
            schedule = LinearDecay(config.learning_rate, total_steps, decay_steps)
            self.generator_optimizer, self.discriminator_optimizer = (
                performance.adam(config.fused_adam, schedule, config.beta_1, config.beta_2,
                                 self.precision)
                for _ in range(2))
            # Keras 3 creates Adam's moments lazily; build them now so a restore fills them.
            self.generator_optimizer.build(self.generator.trainable_variables)
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
        # The checkpoint holds Adam's own variables, not a float16 loss-scale wrapper's, so a
        # run can resume under another precision (the loss scale re-adapts in a few steps).
        self.checkpoint = tf.train.Checkpoint(
            generator=self.generator, discriminator=self.discriminator,
            generator_optimizer=unwrapped(self.generator_optimizer),
            discriminator_optimizer=unwrapped(self.discriminator_optimizer), step=self.step,
            generator_rng=inference.rng_states(self.generator),
            discriminator_rng=inference.rng_states(self.discriminator))
        jit = performance.choose_xla(config.xla) == 'on'
        self._train_step = tf.function(self._distributed_step, jit_compile=jit)

    def replica_step(self, inputs, targets):
        """One update of D and G on this replica's batch; returns the losses (scaled by
        1 / replicas, so summing over replicas gives the global mean)."""
        scale = 1.0 / self.strategy.num_replicas_in_sync
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated = self.generator(inputs, training=True)
            real_logits = self.discriminator([inputs, targets], training=True)
            fake_logits = self.discriminator([inputs, generated], training=True)
            gen_total, gen_gan, gen_l1 = losses.generator_loss(
                fake_logits, generated, targets, self.config.l1_weight, self.config.gan_weight)
            disc, disc_real, disc_fake = losses.discriminator_loss(real_logits, fake_logits)
            # scale_loss multiplies by the loss scale under mixed_float16 (apply_gradients
            # divides it out again) and is the identity otherwise.
            scaled_gen_total = self.generator_optimizer.scale_loss(gen_total * scale)
            scaled_disc = self.discriminator_optimizer.scale_loss(disc * scale)
        gen_grads = gen_tape.gradient(scaled_gen_total, self.generator.trainable_variables)
        disc_grads = disc_tape.gradient(scaled_disc, self.discriminator.trainable_variables)
        self.generator_optimizer.apply_gradients(
            zip(gen_grads, self.generator.trainable_variables))
        self.discriminator_optimizer.apply_gradients(
            zip(disc_grads, self.discriminator.trainable_variables))
        values = (gen_total, gen_gan, gen_l1, disc, disc_real, disc_fake)
        return {name: value * scale for name, value in zip(LOSS_NAMES, values)}

    def _distributed_step(self, inputs, targets):
        per_replica = self.strategy.run(self.replica_step, args=(inputs, targets))
        self.step.assign_add(1)
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in per_replica.items()}

    def train_step(self, inputs, targets):
        """Updates both networks on a batch ([batch, S, S, C] in [-1, 1], or distributed
        values); returns a dict of scalar losses: gen_total, gen_gan, gen_l1, disc, disc_real,
        disc_fake."""
        return self._train_step(inputs, targets)


def prepare_workdir(config, workdir):
    """Creates the workdir, refuses one that holds a run with an incompatible config, and
    writes the resolved config there."""
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, '.write_test')
        with open(probe, 'w'):
            pass
        os.remove(probe)
    except OSError as e:
        raise UserError(f'cannot write to workdir {workdir}: {e.strerror}') from None
    if os.path.exists(os.path.join(workdir, config_lib.CONFIG_FILENAME)):
        previous = config_lib.load(workdir)
        changed = sorted(key for key in set(previous) | set(config)
                         if key not in RESUMABLE_CHANGES and previous.get(key) != config.get(key))
        if changed:
            details = ', '.join(f'{k}: {previous.get(k)!r} -> {config.get(k)!r}' for k in changed)
            raise UserError(f'{workdir} holds a run with a different config ({details}); '
                            'use another --workdir or the same options')
    config_lib.save(config, workdir)


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


def image_grid(generator, inputs, targets):
    """Rows of input | target | output, float [n, S, 3S, 3] in [-1, 1]; the output comes from a
    paper-mode call (dropout on, batch statistics), as at test time in the paper."""
    return images.side_by_side(inputs, targets, inference.generate(generator, inputs, 'paper'))


def training_data(config, data_dir=None):
    """(training examples, sample examples, [(unreadable path, reason)]) of a resolved config:
    TFDS data sources for the pix2pix datasets, file paths otherwise (see
    input_pipeline.train_dataset)."""
    if config.dataset in tfds_builder.NAMES:
        # Read through the TFDS builder, which decoded and checked every file when it prepared
        # the dataset.
        return tfds_builder.training_examples(config, data_dir) + ([],)
    root = datasets.dataset_root(config.dataset, data_dir)
    train_examples, sample_examples = datasets.training_examples(
        root, config.train_split, config.sample_split, config.val_fraction, config.seed)
    sample_examples = sample_examples[:config.num_samples]
    # Unreadable files are left out with a warning rather than ending the run; files that open
    # but have the wrong shape are errors, since the whole dataset is likely laid out wrongly.
    train_examples, unreadable = datasets.readable_examples(train_examples)
    if not train_examples:
        raise UserError(f'none of the training images in {root} can be read')
    datasets.check_examples(train_examples + sample_examples, config.image_size)
    return train_examples, sample_examples, unreadable


def split_examples(config, split, data_dir=None):
    """All examples of one split of a resolved config's dataset, in order, for evaluation: a
    TFDS data source or a list of file pairs (either feeds input_pipeline.eval_dataset)."""
    if config.dataset in tfds_builder.NAMES:
        return tfds_builder.split_source(tfds_builder.prepare(config.dataset, data_dir), split)
    root = datasets.dataset_root(config.dataset, data_dir)
    if not datasets.has_split(root, split):
        raise UserError(f'{root} has no split {split!r} (no {split}/ folder or {split}.csv)')
    return datasets.split_examples(root, split)


def resolve_eval_split(config, data_dir=None):
    """The split periodic evaluation reads: config.eval_split, or for AUTO 'val', else 'test',
    else None (the dataset has neither)."""
    if config.eval_split != config_lib.AUTO:
        return config.eval_split
    if config.dataset in tfds_builder.NAMES:
        present = set(tfds_builder.prepare(config.dataset, data_dir).info.splits)
        has_split = lambda split: split in present
    else:
        root = datasets.dataset_root(config.dataset, data_dir)
        has_split = lambda split: datasets.has_split(root, split)
    return next((split for split in ('val', 'test') if has_split(split)), None)


class BestCheckpoint:
    """The training checkpoint with the best score so far, in WORKDIR/best (one kept), and
    its BEST_RECORD, from which a resumed run picks up the best value. A record of another
    metric, split or image count is not comparable: the next evaluation starts a new best."""

    def __init__(self, checkpoint, workdir, metric, split, images):
        self.folder = os.path.join(workdir, inference.BEST_FOLDER)
        self.manager = tf.train.CheckpointManager(checkpoint, self.folder, max_to_keep=1)
        self.terms = dict(metric=metric, split=split, images=images)
        self.record = None
        path = os.path.join(self.folder, BEST_RECORD)
        if os.path.exists(path):
            with open(path) as f:
                record = json.load(f)
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
        path = os.path.join(self.folder, BEST_RECORD)
        with open(path + '.tmp', 'w') as f:
            json.dump(self.record, f, indent=2)
            f.write('\n')
        os.replace(path + '.tmp', path)
        return True


class PeriodicEvaluation:
    """Scores the trained generator on a split in paper mode (evaluation.Evaluator), logs
    eval/l1, eval/psnr and eval/ssim to WORKDIR/logs/eval and keeps the best checkpoint.

    It scores `sampler`, a copy of the generator given the trained one's weights, so that
    evaluating never touches the state of the one being trained (BatchNorm statistics,
    dropout RNG) and cannot change the training run.
    """

    def __init__(self, trainer, workdir, split, examples, sampler, progress):
        self.trainer, self.split, self.examples = trainer, split, examples
        self.sampler, self.progress = sampler, progress
        config = trainer.config
        self.evaluator = evaluation.Evaluator(sampler, 'paper', config.seed)
        self.writer = tf.summary.create_file_writer(os.path.join(workdir, 'logs', 'eval'))
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
    split = resolve_eval_split(config, data_dir)
    if split is None:
        progress.message(f'{config.dataset} has no val or test split: not evaluating during '
                         'training (set --config.eval_split)')
        return None
    examples = split_examples(config, split, data_dir)
    if isinstance(examples, list):
        examples, unreadable = datasets.readable_examples(examples[:config.eval_images or None])
        for path, reason in unreadable:
            progress.message(f'warning: not evaluating on unreadable image {path}: {reason}')
    return PeriodicEvaluation(trainer, workdir, split, examples, sampler, progress)


def train(config, workdir, data_dir=None, stream=None, strategy=None, on_sample=None):
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
    config = performance.resolve(distribution.resolve(config_lib.resolve(config), strategy))
    chief = distribution.is_chief(strategy)
    train_examples, sample_examples, unreadable = training_data(config, data_dir)
    if chief:
        prepare_workdir(config, workdir)

    total_steps, decay_steps = config_lib.schedule_steps(config, len(train_examples))
    keras.utils.set_random_seed(config.seed)
    trainer = Trainer(config, total_steps, decay_steps, strategy)
    checkpoints = os.path.join(workdir, 'checkpoints')
    # Saving reads each mirrored variable's local copy and runs no collective (the networks,
    # Adam and the RNG states have no sync-on-read variables), so the other workers of a
    # multi-worker run need not take part, and write nothing.
    manager = tf.train.CheckpointManager(
        trainer.checkpoint, checkpoints, max_to_keep=config.keep_checkpoints,
        step_counter=trainer.step) if chief else None
    progress = Progress(total_steps, config.batch_size, config.log_every, stream)
    for path, reason in unreadable:
        progress.message(f'warning: skipping unreadable image {path}: {reason}')
    if unreadable:
        progress.message(f'skipped {len(unreadable)} unreadable training image(s)')
    latest = tf.train.latest_checkpoint(checkpoints)
    if latest:
        trainer.checkpoint.restore(latest).assert_existing_objects_matched()
    start_step = int(trainer.step.numpy())
    if latest:
        progress.message(f'resumed from {latest} at step {start_step}')
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
        # Samples come from a copy of the generator so that drawing them never touches the
        # state of the one being trained (BatchNorm statistics, dropout RNG).
        sampler = models.generator_from_config(config)
        samples = (sampler, sample_batch, on_sample)
        evaluate = periodic_evaluation(trainer, workdir, data_dir, sampler, progress)
    writer = (tf.summary.create_file_writer(os.path.join(workdir, 'logs', 'train')) if chief
              else tf.summary.create_noop_writer())
    with writer.as_default():
        tf.summary.scalar('data/skipped_unreadable_images', len(unreadable), step=start_step)
    try:
        def make_dataset(batch_size, shards, shard):
            return input_pipeline.train_dataset(
                train_examples, config, start_example=start_step * config.batch_size,
                batch_size=batch_size, shards=shards, shard=shard)
        dataset = distribution.distribute_dataset(strategy, make_dataset, config.batch_size)
        run_loop(trainer, dataset, manager, writer, progress, total_steps, samples, evaluate)
    except tf.errors.InvalidArgumentError:
        # Only files can turn out to be truncated; the builder's records all decoded.
        bad = datasets.undecodable_example(train_examples) or (
            evaluate and datasets.undecodable_example(evaluate.examples))
        if bad:
            raise UserError(f'cannot decode image {bad[0]}: {bad[1]}') from None
        raise
    finally:
        writer.close()
        if evaluate:
            evaluate.close()
    return trainer


def run_loop(trainer, dataset, manager, writer, progress, total_steps, samples=None,
             evaluate=None):
    """Trains from trainer.step to total_steps on `dataset` (distributed by the trainer's
    strategy), logging, calling evaluate(step) (if given) every eval_every steps and
    checkpointing with `manager` (if given). samples: (sampler, (inputs, targets), on_sample or
    None): sample grids are drawn with the sampler, a generator copy, and logged; or None."""
    config = trainer.config
    step = int(trainer.step.numpy())
    # Losses are shown and logged as means over the steps since the last log line: a single
    # batch-1 step is too noisy to read a trend from.
    sums, count = dict.fromkeys(LOSS_NAMES, 0.0), 0
    with StopSignal() as stop, writer.as_default():
        for inputs, targets in dataset:
            values = {k: float(v) for k, v in trainer.train_step(inputs, targets).items()}
            step += 1
            if not all(math.isfinite(v) for v in values.values()):
                bad = ', '.join(f'{k}={v}' for k, v in values.items() if not math.isfinite(v))
                last = (manager and manager.latest_checkpoint) or 'none written yet'
                raise TrainingError(f'non-finite loss at step {step} ({bad}); stopped without '
                                    f'saving. Last good checkpoint: {last}')
            sums, count = {k: sums[k] + values[k] for k in LOSS_NAMES}, count + 1
            means = {k: total / count for k, total in sums.items()}
            progress.update(step, means)
            if step % config.log_every == 0 or step == total_steps:
                for name, value in means.items():
                    tf.summary.scalar(f'loss/{name}', value, step=step)
                sums, count = dict.fromkeys(LOSS_NAMES, 0.0), 0
                tf.summary.scalar('learning_rate',
                                  trainer.generator_optimizer.learning_rate, step=step)
                tf.summary.scalar('images_per_second', progress.images_per_second(step), step=step)
            if samples and (step % config.sample_every == 0 or step == total_steps):
                sampler, (inputs, targets), on_sample = samples
                sampler.set_weights(trainer.generator.get_weights())
                grid = image_grid(sampler, inputs, targets) * 0.5 + 0.5
                tf.summary.image('input_target_output', grid, step=step,
                                 max_outputs=config.num_samples)
                if on_sample:
                    on_sample(step, grid.numpy())
            # A stopped run saves at once rather than after a pass over the split.
            if evaluate and not stop.received and (step % config.eval_every == 0
                                                   or step == total_steps):
                evaluate(step)
            if manager and (step % config.checkpoint_every == 0 or step == total_steps
                            or stop.received):
                manager.save(checkpoint_number=step)
            if stop.received:
                saved = f'saved {manager.latest_checkpoint}' if manager else 'the chief saves'
                progress.message(f'stopped by signal {stop.received} at step {step}; {saved}')
                raise KeyboardInterrupt
            if step >= total_steps:
                break
