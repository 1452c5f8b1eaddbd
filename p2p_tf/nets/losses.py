"""The conditional GAN objective with L1 (paper Sec. 3.1, 3.3), as pure functions of tensors.

Losses are averaged over every patch logit and pixel of the batch. Under a tf.distribute
strategy the train step divides them by the number of replicas so the summed gradients equal
those of the global batch.
"""

import tensorflow as tf


def sigmoid_cross_entropy(labels_value, logits):
    """Mean sigmoid cross-entropy of `logits` against a constant label (1 real, 0 fake)."""
    labels = tf.fill(tf.shape(logits), tf.cast(labels_value, logits.dtype))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def generator_loss(fake_logits, generated, target, l1_weight=100.0, gan_weight=1.0):
    """gan_weight * GAN term log D(x, G(x)) (the non-saturating form)
    + l1_weight * mean |target - G(x)|.

    Returns (total, gan, l1) scalars, `gan` and `l1` unweighted; `generated` and `target` are
    [batch, H, W, C] in [-1, 1]. gan_weight=0 is the paper's "L1 only" objective and
    l1_weight=0 its "cGAN only" (Table 1).
    """
    gan = sigmoid_cross_entropy(1.0, fake_logits)
    l1 = tf.reduce_mean(tf.abs(target - generated))
    return gan_weight * gan + l1_weight * l1, gan, l1


def discriminator_loss(real_logits, fake_logits):
    """Returns (total, real, fake): the cross-entropies on real and generated pairs, with the
    total halved "to slow down the rate at which D learns relative to G" (paper Sec. 3.3)."""
    real = sigmoid_cross_entropy(1.0, real_logits)
    fake = sigmoid_cross_entropy(0.0, fake_logits)
    return 0.5 * (real + fake), real, fake
