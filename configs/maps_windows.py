"""Rectangular training measured on maps (aerial photo -> map): 2:1 windows against square
crops with the same pixels per step, at a scale a 2-core CPU affords.

The 600x600 halves are resized to 192x192 (paper-style jitter at a third of the paper's scale);
`windows` crops 64x128 windows from them, one per step, `squares` two 64x64 crops per step
(batch 2): 8,192 pixels per step either way, at the same ground resolution. Both are scored on
the whole held-out halves at 192x192 (eval_size: the generator is fully convolutional), with
half-width networks, 5,000 steps and seed 0 each.

The shared copy of maps holds only the authors' val split (1,098 pairs); split it first,
seeded (about 10% held out):

    python -m p2p_tf.data split --src=../shared/datasets/maps/val --out=runs/maps_split \
        --val=0.1 --test=0 --seed=0
    python -m p2p_tf.train --config=configs/maps_windows.py:windows \
        --data_dir=runs/maps_split --workdir=runs/maps_windows/windows
    python -m p2p_tf.train --config=configs/maps_windows.py:squares \
        --data_dir=runs/maps_split --workdir=runs/maps_windows/squares
    python -m p2p_tf.evaluate --workdir=runs/maps_windows/windows --data_dir=runs/maps_split

docs/training.md#rectangular-training has the figures of a real run.
"""

from p2p_tf.config import get_config as paper_config

VARIANTS = {
    'windows': dict(image_size='64x128', batch_size=1),
    'squares': dict(image_size=64, batch_size=2),
}


def get_config(variant='windows'):
    if variant not in VARIANTS:
        raise ValueError(f'unknown maps variant {variant!r}; one of {", ".join(VARIANTS)}')
    config = paper_config()
    config.dataset = 'folder'  # The split above: train/ and val/ of side-by-side pairs.
    config.direction = 'AtoB'  # Aerial photo (left) -> map (right).
    config.load_size = 192
    config.eval_size = 192
    config.generator_filters = 32
    config.discriminator_filters = 32
    config.steps = 5000
    config.log_every = 500
    config.sample_every = 1000
    config.checkpoint_every = 1000
    config.eval_every = 1000
    config.update(VARIANTS[variant])
    return config
