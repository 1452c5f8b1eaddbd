"""Edges -> shoe photo on edges2shoes (49,825 training pairs), paper settings.

    python -m p2p_tf.train --config=configs/edges2shoes.py --workdir=runs/edges2shoes

AtoB, 15 epochs of batch 4 = 186,855 steps (paper appendix 6.2). For edges2handbags use
--dataset=edges2handbags (same facts: 15 epochs, batch 4); for night2day, 17 epochs of batch 4.
"""

from p2p_tf.config import get_config as paper_config


def get_config():
    config = paper_config()
    config.dataset = 'edges2shoes'
    return config
