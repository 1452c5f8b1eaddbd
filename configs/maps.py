"""Aerial photo -> map on the pix2pix maps set (1096 training pairs), paper settings.

    python -m p2p_tf.train --config=configs/maps.py --workdir=runs/maps

AtoB (photo on the left), 200 epochs of batch 1 = 219,200 steps at 256x256, from 600x600
files resized to 286 and jittered. The paper evaluates it with AMT "real vs fake" studies
(Table 4: 18.9% of maps and 6.1% of aerial photos judged real by people).
"""

from p2p_tf.config import get_config as paper_config


def get_config():
    config = paper_config()
    config.dataset = 'maps'
    return config
