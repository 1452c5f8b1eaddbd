"""Fine-tuning: a new run whose networks start from another run's weights
(`train --init_from=SOURCE`, config.init_from).

SOURCE is a training run's workdir (its latest checkpoint), one of its checkpoints
(WORKDIR/checkpoints/ckpt-N, or WORKDIR/best/ckpt-N), or a SavedModel export made in paper mode.
An eval-mode export cannot be trained from: its BatchNorm is folded into the convolutions.
Only the weights come over: the new run starts at step 0 with fresh optimizers in its own
workdir. The architectures must match variable for variable; the first layer that differs is
named. A workdir that already has checkpoints resumes from them and ignores init_from (resuming
always wins, nothing is overwritten).
"""

import itertools
import os

import tensorflow as tf

from p2p_tf import workdirs
from p2p_tf.errors import UserError
from p2p_tf.nets import models


def resolve_source(source):
    """The exact weights `source` names: a checkpoint path, or an export folder (absolute)."""
    source = os.path.abspath(source)
    if workdirs.is_export(source):
        metadata = workdirs.read_json(os.path.join(source, workdirs.EXPORT_METADATA))
        if metadata.get('mode') != 'paper':
            raise UserError(f'--init_from {source}: an eval-mode export has its BatchNorm '
                            'folded into the convolutions and cannot be trained from; give '
                            'its run\'s workdir or a checkpoint, or export with --mode=paper')
        return source
    if not os.path.exists(source) and not os.path.exists(source + '.index'):
        raise UserError(f'--init_from {source} does not exist (give a training run\'s workdir, '
                        'one of its checkpoints, or a paper-mode export)')
    return os.path.abspath(workdirs.find_checkpoint(source)[1])


def for_workdir(config, workdir, warn):
    """The config to write into `workdir`: init_from resolved to exact weights for a new run;
    for a run being resumed, the init_from it was started with (a different one is ignored
    with a warning)."""
    if tf.train.latest_checkpoint(workdirs.checkpoints_dir(workdir)):
        recorded = workdirs.read_config(workdir) if os.path.exists(
            os.path.join(workdir, workdirs.CONFIG_FILENAME)) else None
        if config.init_from:
            warn(f'warning: {workdir} has checkpoints: resuming it; --init_from '
                 f'{config.init_from} is ignored')
        if recorded is not None:
            config.init_from = recorded.init_from
            config.init_discriminator = recorded.init_discriminator
        return config
    if config.init_from:
        config.init_from = resolve_source(config.init_from)
    elif config.init_discriminator:
        raise UserError('init_discriminator needs --init_from')
    return config


def restored(network, name, source):
    """`network` with the weights saved under `name` in checkpoint `source`, or None when the
    checkpoint has no such network (a generator-only checkpoint has no discriminator)."""
    try:
        status = tf.train.Checkpoint(**{name: network}).restore(source)
        status.expect_partial().assert_existing_objects_matched()
    except AssertionError:
        return None
    except Exception as e:  # noqa: BLE001  (a damaged file fails in many ways)
        raise UserError(workdirs.restore_error(source, e)) from None
    return network


def source_variables(source, with_discriminator):
    """(generator variables, discriminator variables or None) of the resolved source, each in
    the order of the network's `variables`; the loaded export too, which owns them."""
    if workdirs.is_export(source):
        loaded = tf.saved_model.load(source)
        # The export tracked the generator alone, its variables in the model's order.
        return list(loaded.variables), None, loaded
    source_config = workdirs.read_config(os.path.dirname(os.path.dirname(source)))
    generator = restored(models.generator_from_config(source_config), 'generator', source)
    if generator is None:
        raise UserError(f'--init_from {source} holds no generator')
    discriminator = with_discriminator and restored(
        models.discriminator_from_config(source_config), 'discriminator', source)
    return generator.variables, discriminator.variables if discriminator else None, None


def weights(variables):
    """The variables that hold what a network learned: all but the dropout layers' random
    states, which stay the new run's own (seeded by its config)."""
    return [v for v in variables
            if 'seed_generator_state' not in (getattr(v, 'path', None) or v.name)]


def layer_of(variable):
    """'functional/conv2d_3' of a variable whose path is 'functional/conv2d_3/kernel'."""
    return variable.path.rpartition('/')[0] if hasattr(variable, 'path') else variable.name


def copy_variables(targets, sources, what, source):
    """Assigns each source variable to the target variable in the same place, after checking
    that every shape matches; else a UserError naming the first layer that differs."""
    targets, sources = weights(targets), weights(sources)
    for target, origin in itertools.zip_longest(targets, sources):
        if target is None or origin is None or tuple(target.shape) != tuple(origin.shape):
            layer = layer_of(target if target is not None else origin)
            have = tuple(target.shape) if target is not None else 'nothing'
            had = tuple(origin.shape) if origin is not None else 'nothing'
            raise UserError(f'--init_from {source}: the {what}s differ from layer {layer} on '
                            f'({had} in the source, {have} in this run); architectures must '
                            'match (depth, filters, channels)')
    for target, origin in zip(targets, sources):
        target.assign(tf.cast(origin, target.dtype))


def initialize(trainer, config, message):
    """Copies the source's generator (and, with init_discriminator, its discriminator) into a
    new run's trainer; message(text) reports what was taken."""
    source = resolve_source(config.init_from)
    generator, discriminator, _ = source_variables(source, config.init_discriminator)
    copy_variables(trainer.generator.variables, generator, 'generator', source)
    taken = 'generator'
    if config.init_discriminator:
        if discriminator is None:
            message(f'warning: {source} has no discriminator: the discriminator starts from '
                    'scratch')
        else:
            copy_variables(trainer.discriminator.variables, discriminator, 'discriminator',
                           source)
            taken = 'generator and discriminator'
    message(f'initialized the {taken} from {source}')
