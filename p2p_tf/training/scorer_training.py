"""Training the FCN-score's segmenter (p2p_tf/nets/segmenter.py) on a dataset's real
training photos, with the same step loop as pix2pix (loop.py). The scorer's folder (fcn_dir)
holds its resolved config (config.json) and its checkpoints, as a run's workdir does."""

import keras
import ml_collections
import tensorflow as tf

from p2p_tf import scorer_config, workdirs
from p2p_tf.datasets import examples as examples_lib
from p2p_tf.datasets import label_maps
from p2p_tf.nets import segmenter
from p2p_tf.training import loop
from p2p_tf.training.progress import Progress

# Fields that may change when a scorer is trained further; any other change is an error.
RESUMABLE_CHANGES = ('steps', 'log_every', 'checkpoint_every')


def scorer_checkpoint(config):
    """(model, optimizer, step, tf.train.Checkpoint of all three) of a resolved scorer config."""
    model, step = segmenter.scorer_variables(config)
    # The rate decays to zero over the run (cosine): the last steps refine rather than jump.
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
        config.learning_rate, config.steps))
    # Keras 3 creates Adam's moments lazily; build them now so a restore fills them.
    optimizer.build(model.trainable_variables)
    return model, optimizer, step, tf.train.Checkpoint(model=model, optimizer=optimizer,
                                                       step=step)


def prepare_fcn_dir(config, fcn_dir):
    """Creates fcn_dir, refuses one holding a scorer with another config, saves `config`."""
    workdirs.prepare(config, fcn_dir, RESUMABLE_CHANGES, workdirs.read_scorer_config, 'scorer',
                     'fcn_dir')


def train_scorer(config: ml_collections.ConfigDict, fcn_dir: str, data_dir: str | None = None,
                 stream=None) -> keras.Model:
    """Trains the segmenter of `config` on its dataset's real training photos, or resumes or
    reuses the one in fcn_dir; returns the Keras model (photos -> logits, segmentation_unet).

    config: a ConfigDict from scorer_config.get_config() plus overrides (resolved here);
    data_dir: as for pix2pix.train; stream: where progress lines go (default stdout).
    """
    config = scorer_config.resolve(config, label_maps.PALETTES)
    examples = examples_lib.split_examples(config, config.train_split, data_dir)
    prepare_fcn_dir(config, fcn_dir)
    keras.utils.set_random_seed(config.seed)
    model, optimizer, step, checkpoint = scorer_checkpoint(config)
    manager = tf.train.CheckpointManager(checkpoint, workdirs.checkpoints_dir(fcn_dir),
                                         max_to_keep=1, step_counter=step)
    progress = Progress(config.steps, config.batch_size, config.log_every, stream)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    if int(step) >= config.steps:
        progress.message(f'{fcn_dir} holds a scorer trained for {int(step)} steps')
        return model

    photos, classes, off_palette = label_maps.load_split(examples, config)
    progress.message(f'training the FCN-score segmenter on {len(photos)} {config.dataset} '
                     f'{config.train_split} photos at {config.image_size}x{config.image_size} '
                     f'for {config.steps} steps of batch {config.batch_size}'
                     + (f' (resumed at step {int(step)})' if int(step) else ''))
    progress.message(label_maps.off_palette_message(off_palette))

    @tf.function
    def train_step(batch_photos, batch_classes):
        with tf.GradientTape() as tape:
            loss = segmenter.segmentation_loss(batch_classes, model(batch_photos, training=True))
        optimizer.apply(tape.gradient(loss, model.trainable_variables),
                        model.trainable_variables)
        step.assign_add(1)
        return {'loss': loss}

    batches = label_maps.training_batches(photos, classes, config, int(step) * config.batch_size)
    loop.run_steps(train_step, batches, int(step), config.steps, ('loss',), progress,
                   config.log_every, save=lambda current: manager.save(checkpoint_number=current),
                   save_every=config.checkpoint_every,
                   describe_last_good=lambda: manager.latest_checkpoint or 'none written yet')
    return model
