"""The conditional GAN objective with L1 (paper Sec. 3.1, 3.3), and the options of pix2pixHD and
its successors, as pure functions of tensors: the GAN terms of config.GAN_LOSSES (the paper's
'vanilla' sigmoid cross-entropy, non-saturating for G; least squares, LSGAN (Mao et al. 2017),
pix2pixHD's default; hinge (Lim & Ye 2017), as in SPADE) and feature matching.

Losses are averaged over every patch logit and pixel of the batch, and over the scales of a
multi-scale discriminator (logits given as a list, one tensor per scale). Under a
tf.distribute strategy the train step divides them by the number of replicas so the summed
gradients equal those of the global batch.
"""

import tensorflow as tf


def sigmoid_cross_entropy(labels_value, logits):
    """Mean sigmoid cross-entropy of `logits` against a constant label (1 real, 0 fake)."""
    labels = tf.fill(tf.shape(logits), tf.cast(labels_value, logits.dtype))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def scale_mean(function, *logit_lists):
    """The mean over scales of function(logits of each scale, ...); one tensor is one scale."""
    lists = [logits if isinstance(logits, (list, tuple)) else [logits]
             for logits in logit_lists]
    values = [function(*scale) for scale in zip(*lists)]
    return values[0] if len(values) == 1 else tf.add_n(values) / len(values)


def generator_gan_term(fake_logits, gan_loss='vanilla'):
    """G's GAN term on the logits of generated pairs: -log D (vanilla), (D - 1)^2 (lsgan) or
    -D (hinge), averaged."""
    def term(logits):
        if gan_loss == 'lsgan':
            return tf.reduce_mean(tf.square(logits - 1.0))
        if gan_loss == 'hinge':
            return -tf.reduce_mean(logits)
        return sigmoid_cross_entropy(1.0, logits)
    return scale_mean(term, fake_logits)


def discriminator_terms(real_logits, fake_logits, gan_loss='vanilla'):
    """(real, fake): D's losses on real and generated pairs: cross-entropies (vanilla),
    (D - 1)^2 and D^2 (lsgan), or max(0, 1 - D) and max(0, 1 + D) (hinge), averaged."""
    def terms(real, fake):
        if gan_loss == 'lsgan':
            return tf.reduce_mean(tf.square(real - 1.0)), tf.reduce_mean(tf.square(fake))
        if gan_loss == 'hinge':
            return (tf.reduce_mean(tf.nn.relu(1.0 - real)),
                    tf.reduce_mean(tf.nn.relu(1.0 + fake)))
        return sigmoid_cross_entropy(1.0, real), sigmoid_cross_entropy(0.0, fake)
    return (scale_mean(lambda real, fake: terms(real, fake)[0], real_logits, fake_logits),
            scale_mean(lambda real, fake: terms(real, fake)[1], real_logits, fake_logits))


def feature_matching(real_features, fake_features):
    """pix2pixHD's feature-matching loss (Wang et al. 2018, Eq. 4, with its code's weights):
    per scale, 4 / (number of layers) x the sum over layers of the mean |D_k(real) -
    D_k(generated)|, averaged over scales. real_features, fake_features: [[activations of each
    layer] of each scale]; the real pairs' activations are constants (no gradient to D)."""
    def scale_loss(real, fake):
        # In float32: under mixed precision D's activations are bfloat16 or float16.
        return 4.0 / len(real) * tf.add_n([
            tf.reduce_mean(tf.abs(tf.cast(tf.stop_gradient(r), tf.float32)
                                  - tf.cast(f, tf.float32)))
            for r, f in zip(real, fake)])
    return scale_mean(scale_loss, [tuple(f) for f in real_features],
                      [tuple(f) for f in fake_features])


def generator_loss(fake_logits, generated, target, l1_weight=100.0, gan_weight=1.0,
                   gan_loss='vanilla', feature_matching_loss=0.0, feature_matching_weight=0.0):
    """gan_weight * GAN term (generator_gan_term) + l1_weight * mean |target - G(x)|
    + feature_matching_weight * feature_matching_loss.

    Returns (total, gan, l1) scalars, `gan` and `l1` unweighted; `generated` and `target` are
    [batch, H, W, C] in [-1, 1]. gan_weight=0 is the paper's "L1 only" objective and
    l1_weight=0 its "cGAN only" (Table 1).
    """
    gan = generator_gan_term(fake_logits, gan_loss)
    l1 = tf.reduce_mean(tf.abs(target - generated))
    total = gan_weight * gan + l1_weight * l1
    if feature_matching_weight:
        total += feature_matching_weight * feature_matching_loss
    return total, gan, l1


def discriminator_loss(real_logits, fake_logits, gan_loss='vanilla'):
    """Returns (total, real, fake): D's losses on real and generated pairs
    (discriminator_terms), with the total halved "to slow down the rate at which D learns
    relative to G" (paper Sec. 3.3), for every objective."""
    real, fake = discriminator_terms(real_logits, fake_logits, gan_loss)
    return 0.5 * (real + fake), real, fake
