"""Semantic labels -> street photo on Cityscapes (2975 training pairs), paper settings.

    python -m p2p_tf.train --config=configs/cityscapes.py --workdir=runs/cityscapes

BtoA (labels are the right half), 200 epochs of batch 1 = 595,000 steps. The paper's
FCN-score for L1+cGAN with the U-Net is 0.66 per-pixel accuracy (Table 1).
"""

from p2p_tf.config import get_config as paper_config


def get_config():
    config = paper_config()
    config.dataset = 'cityscapes'
    return config
