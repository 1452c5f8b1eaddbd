"""The FCN-score segmenter for CMP Facades (p2p_tf/nets/segmenter.py): a compact U-Net trained on
the 400 real training photos at 128x128, 2,000 steps of batch 8 (40 epochs).

    python -m p2p_tf.fcn_score train --config=configs/fcn/facades.py \
        --data_dir=../shared/datasets --fcn_dir=runs/fcn_facades

Measured on the 2-core CPU (shared with other jobs): 9 min 15 s for the command, data loading
included; real facades photos then score (per-pixel acc., per-class acc., class IoU) 0.66,
0.43, 0.32 on val and 0.66, 0.42, 0.31 on test: the "Ground truth" row of Table 1. Add
--config.image_size=64 for the scale of configs/table1.py (3-4 min).
"""

from p2p_tf.scorer_config import get_config  # noqa: F401  (defaults: the package)
