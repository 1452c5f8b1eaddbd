"""p2p_tf: pix2pix (Isola et al., 2017) in TensorFlow 2 / Keras 3."""

__version__ = '0.1.0'
