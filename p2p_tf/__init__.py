"""p2p_tf: pix2pix (Isola et al., 2017) in TensorFlow 2 / Keras 3."""

__version__ = '0.1.0'

# Registers the TFDS builder `pix2pix`, so that tfds.load('pix2pix/facades') works after
# `import p2p_tf` (it imports TFDS, not TensorFlow).
from p2p_tf.datasets import tfds_builder  # noqa: E402, F401
