"""A few-minutes CPU demo on CMP Facades: labels -> photo at 64x64, half-width networks.

    python -m p2p_tf.train --config=configs/quick.py --data_dir=../shared/datasets \
        --workdir=runs/quick
    python -m p2p_tf.translate --workdir=runs/quick --paired \
        --input=../shared/datasets/facades/val --output=runs/quick/val

2,000 steps (5 epochs) at about 10 images/s on a 2-core CPU: roughly 4 minutes. The L1 term
falls from about 0.35 to about 0.2 and the translated facades show walls, windows and
floors in the right places, blurry at this size and length. Leave out --data_dir to download
facades.tar.gz (29 MB) from the pix2pix authors' server instead.
"""

from p2p_tf.config import get_config as paper_config


def get_config():
    config = paper_config()
    config.image_size = 64
    config.load_size = 72
    config.generator_filters = 32
    config.discriminator_filters = 32
    config.steps = 2000
    config.log_every = 100
    config.sample_every = 500
    config.checkpoint_every = 500
    return config
