"""Digit outline -> filled, shaded digit on pairs built from MNIST, for little compute.

    python -m p2p_tf.train --config=configs/mnist_pairs.py --workdir=runs/mnist_pairs

The first run downloads MNIST through TFDS (11 MB, into ~/tensorflow_datasets) and writes
60,000 training and 1,000 validation 128x128 pairs (A: a 2-pixel white outline, B: the digit
filled in shaded orange; see p2p_tf/datasets/mnist_pairs.py) into the cache,
~/.cache/p2p_tf/extracted/mnist_pairs; later runs reuse them. AtoB, 1 epoch of batch 1 = 60,000
steps at 128x128, from the 128 px halves resized to 143 and jittered; `--config.steps=5000` for a
shorter run.
"""

from p2p_tf.config import get_config as paper_config


def get_config():
    config = paper_config()
    config.dataset = 'mnist_pairs'
    config.image_size = 128
    config.load_size = 143  # The paper's 286/256 jitter ratio.
    return config
