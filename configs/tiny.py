"""A seconds-long run of the whole pipeline, for tests and CI: 32x32 crops, 8 filters.

    python -m p2p_tf.train --config=configs/tiny.py --data_dir=../shared/datasets \
        --workdir=/tmp/p2p_tiny

Trains 8 steps on facades, writes 2 checkpoints, logs every 2 steps, evaluates 8 val images
at steps 4 and 8; the images are meaningless, only the plumbing is exercised.
"""

from p2p_tf.config import get_config as paper_config


def get_config():
    config = paper_config()
    config.image_size = 32
    config.load_size = 36
    config.generator_filters = 8
    config.discriminator_filters = 8
    config.steps = 8
    config.log_every = 2
    config.sample_every = 4
    config.checkpoint_every = 4
    config.num_samples = 2
    config.eval_every = 4
    config.eval_images = 8
    return config
