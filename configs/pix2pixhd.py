"""pix2pixHD's options (docs/training.md#beyond-the-paper-pix2pixhds-options) side by side with
the paper's setting, at the scale of configs/table1.py (CMP Facades labels -> photo, 64x64,
half-width networks, 8,000 steps of batch 1, seed 0), each variant one option or pair of
options on top of the paper's:

    python -m p2p_tf.table1 --config=configs/pix2pixhd.py --data_dir=../shared/datasets \
        --workdir=runs/pix2pixhd

trains them all (resuming whatever is done), the FCN-score segmenter at the same size, and
prints FCN-scores, L1, PSNR and SSIM per variant with a sheet of the same validation images.
One variant alone, chosen after a colon:

    python -m p2p_tf.train --config=configs/pix2pixhd.py:lsgan --data_dir=../shared/datasets \
        --workdir=runs/pix2pixhd/lsgan
"""

import os

from p2p_tf.config import config_file_module

VARIANTS = {
    'paper': {},
    'multiscale_fm': dict(num_discriminators=2, feature_matching_weight=10.0),
    'resize_conv': dict(upsample='resize_conv'),
    'lsgan': dict(gan_loss='lsgan'),
    'alternating': dict(update_order='alternating'),
}


def get_config(variant='paper'):
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}; one of {", ".join(VARIANTS)}')
    # The paper's setting at the CPU scale of Table 1 (its L1+cGAN run).
    table1 = config_file_module(os.path.join(os.path.dirname(__file__), 'table1.py'))
    config = table1.get_config('l1_cgan')
    config.update(VARIANTS[variant])
    return config
