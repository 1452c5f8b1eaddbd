"""The paper's loss ablation (Table 1) on CMP Facades labels -> photo, at a scale a 2-core CPU
affords: 64x64 crops (resized to 72, paper-style jitter), half-width networks, 8,000 steps of
batch 1 (20 epochs; the paper trained 200 epochs at 256x256). Three variants, chosen after a
colon:

    python -m p2p_tf.train --config=configs/table1.py:l1 --data_dir=../shared/datasets \
        --workdir=runs/table1/l1
    (likewise :cgan and :l1_cgan)

`python -m p2p_tf.table1 --data_dir=../shared/datasets --workdir=runs/table1` trains all three
(resuming whatever is done), trains the FCN-score segmenter on the real photos at the same size
and prints the Table 1 layout; docs/evaluation.md has the figures of a real run.
"""

import os

from p2p_tf.config import config_file_module

# Paper Sec. 4.2: "L1" is L1 alone (no adversarial term), "cGAN" the conditional adversarial
# loss alone (lambda = 0), "L1+cGAN" both with lambda = 100.
VARIANTS = {
    'l1': dict(l1_weight=100.0, gan_weight=0.0),
    'cgan': dict(l1_weight=0.0, gan_weight=1.0),
    'l1_cgan': dict(l1_weight=100.0, gan_weight=1.0),
}


def get_config(variant='l1_cgan'):
    if variant not in VARIANTS:
        raise ValueError(f'unknown Table 1 variant {variant!r}; one of {", ".join(VARIANTS)}')
    # The scale of the CPU demo (configs/quick.py): L1+cGAN is exactly that run.
    config = config_file_module(os.path.join(os.path.dirname(__file__), 'quick.py')).get_config()
    config.update(VARIANTS[variant])
    return config
