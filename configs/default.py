"""The paper's defaults: labels -> photo on CMP Facades, 256x256, batch 1, 200 epochs.

    python -m p2p_tf.train --config=configs/default.py --workdir=runs/facades

Same as giving no --config. The paper reports this setup in Sec. 4 and appendix 6.2
(80,000 steps; about 11 hours on the paper's GPU, days on a 2-core CPU).
"""

from p2p_tf.config import get_config  # noqa: F401  (the defaults live in the package)
