"""What the speed measurements step on: a Trainer and one random batch of its config's shape."""


def trainer_and_random_batch(config):
    """(Trainer for the resolved `config`, inputs, targets): uniform in [-1, 1], seeds 1 and 2,
    [batch_size, image_size, image_size, 3] each."""
    import tensorflow as tf

    from p2p_tf.training.trainer import Trainer
    trainer = Trainer(config, total_steps=10 ** 9)
    shape = [config.batch_size, config.image_size, config.image_size, 3]
    inputs, targets = (tf.random.uniform(shape, -1, 1, seed=seed) for seed in (1, 2))
    return trainer, inputs, targets
