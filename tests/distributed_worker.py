"""Runs in a subprocess of tests/test_distribution.py, in a fresh TensorFlow runtime (strategies
and logical devices must be set up before the runtime starts).

    python tests/distributed_worker.py train STRATEGY WORKDIR DATA_DIR STEPS OUT.npz
        trains a tiny run on the folder of pairs DATA_DIR as `python -m p2p_tf.train
        --strategy=STRATEGY` would (multi_worker reads TF_CONFIG), then saves the trained
        generator's and discriminator's weights to OUT.npz (the test calls `train` in its own
        process for the default strategy).
    python tests/distributed_worker.py steps OUT.npz
        splits the CPU in two and saves the losses and weights after two train steps of
        global batch 2 on one device and on two mirrored replicas (BatchNorm synchronized or
        not; float32, and mixed_float16 synchronized), plus the per-replica outputs of a
        dropout layer.
"""

import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def weights(trainer):
    return trainer.generator.get_weights() + trainer.discriminator.get_weights()


def save(path, **arrays):
    np.savez(path, **{name: np.asarray(value) for name, value in arrays.items()})


def train(strategy_name, workdir, data_dir, steps, out):
    from p2p_tf import config as config_lib
    from p2p_tf.training import distribution, pix2pix
    config = config_lib.config_file_module(os.path.join(REPO, 'configs', 'tiny.py')).get_config()
    # Dropout masks are drawn per replica, so only without dropout can runs on different
    # numbers of replicas be compared; and in float32 (auto picks bfloat16 on CPUs that have
    # it), where summing the replicas' gradients in another order moves a weight by 1e-7,
    # not 1e-3.
    config.update(dict(dataset='folder', batch_size=2, dropout_rate=0.0, steps=int(steps),
                       checkpoint_every=2, eval_every=2, eval_images=4, sample_every=2,
                       precision='float32'))
    strategy = distribution.create_strategy(strategy_name, peer_timeout=60)
    trainer = pix2pix.train(config, workdir, data_dir, strategy=strategy)
    save(out, step=int(trainer.step.numpy()), is_chief=distribution.is_chief(strategy),
         **{f'w{i}': w for i, w in enumerate(weights(trainer))})


def steps(out):
    from p2p_tf.training import distribution
    distribution.split_cpu(2)
    import keras
    import tensorflow as tf

    from p2p_tf import config as config_lib
    from p2p_tf.nets import layers
    from p2p_tf.training import distribution
    from p2p_tf.training import trainer as trainer_lib
    config = config_lib.get_config()
    config.update(dict(image_size=32, load_size=36, generator_filters=8,
                       discriminator_filters=8, batch_size=2, dropout_rate=0.0,
                       precision='float32'))
    config = config_lib.resolve(config)
    rng = np.random.default_rng(0)
    batches = [tuple(rng.uniform(-1, 1, (2, 32, 32, 3)).astype('float32') for _ in range(2))
               for _ in range(2)]
    mirrored = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    results = {}
    initial = None
    for name, strategy, overrides in [
            ('single', tf.distribute.get_strategy(), {}),
            ('mirrored', mirrored, {}),
            ('unsynchronized', mirrored, dict(sync_batch_norm='off')),
            ('mirrored_float16', mirrored, dict(precision='mixed_float16'))]:
        keras.utils.set_random_seed(0)
        run_config = config.copy_and_resolve_references()
        run_config.update(overrides)
        run_config = distribution.resolve_run(run_config, strategy)
        trainer = trainer_lib.Trainer(run_config, 10, strategy=strategy)
        # Every run starts from the single-device run's initial weights.
        initial = initial or weights(trainer)
        trainer.generator.set_weights(initial[:len(trainer.generator.weights)])
        trainer.discriminator.set_weights(initial[len(trainer.generator.weights):])
        examples = tf.data.Dataset.from_tensor_slices(
            tuple(np.concatenate(column) for column in zip(*batches)))
        dataset = distribution.distribute_dataset(
            strategy, lambda batch, shards, shard, examples=examples:
            examples.shard(shards, shard).batch(batch), 2)
        losses = [trainer.train_step(inputs, targets) for inputs, targets in dataset]
        results[f'{name}_losses'] = [[float(step[key]) for key in trainer_lib.LOSS_NAMES]
                                     for step in losses]
        results[f'{name}_sync'] = trainer.config.sync_batch_norm
        for i, w in enumerate(weights(trainer)):
            results[f'{name}_w{i}'] = w
        results[f'{name}_variables_on_write'] = all(
            getattr(getattr(v, 'value', v), 'synchronization', None)
            in (None, tf.VariableSynchronization.ON_WRITE, tf.VariableSynchronization.AUTO)
            for v in trainer.checkpoint.generator.variables
            + trainer.checkpoint.discriminator.variables
            + trainer.generator_optimizer.variables + trainer.discriminator_optimizer.variables)

    # The same input on both replicas: each replica's dropout mask is its own.
    with mirrored.scope():
        dropout = layers.Dropout(0.5, seed=0)
    ones = mirrored.experimental_distribute_values_from_function(
        lambda context: tf.ones([1, 64]))
    outputs = mirrored.run(tf.function(lambda x: dropout(x, training=True)), args=(ones,))
    results['dropout_replicas'] = np.concatenate(
        [x.numpy() for x in mirrored.experimental_local_results(outputs)])
    save(out, **results)


if __name__ == '__main__':
    command, *arguments = sys.argv[1:]
    {'train': train, 'steps': steps}[command](*arguments)
