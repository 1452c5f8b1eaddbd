"""Image-quality metrics of translated images against their targets, one value per image.

Every function takes batches [batch, H, W, C] float in [-1, 1] (the generator's range) and
returns float32 [batch]:
- l1: mean |target - output| on the [-1, 1] scale, the quantity of training's gen_l1 loss term;
- psnr: peak signal-to-noise ratio in dB on the [0, 1] scale, capped at PSNR_CAP_DB;
- ssim: structural similarity on the [0, 1] scale (Wang et al. 2004, the usual constants).
"""

import tensorflow as tf

# The names (and whether higher is better) are the config's, so that checking best_metric needs
# no TensorFlow.
from p2p_tf.config import HIGHER_IS_BETTER, METRIC_NAMES

L1, PSNR, SSIM = METRIC_NAMES

# Identical images have zero error and infinite PSNR; the mean squared error is floored so that
# they score this cap instead, which keeps means over a split finite.
PSNR_CAP_DB = 100.0
MSE_FLOOR = 10.0 ** (-PSNR_CAP_DB / 10.0)

# tf.image.ssim's defaults, the constants of Wang et al. (2004): an 11x11 Gaussian window.
SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def to_unit_scale(images):
    """[-1, 1] -> [0, 1], float32."""
    return (tf.cast(images, tf.float32) + 1.0) * 0.5


def l1(outputs, targets):
    """Mean absolute error per image on the [-1, 1] scale, in [0, 2]."""
    difference = tf.cast(targets, tf.float32) - tf.cast(outputs, tf.float32)
    return tf.reduce_mean(tf.abs(difference), axis=[1, 2, 3])


def psnr(outputs, targets):
    """PSNR per image in dB on the [0, 1] scale (peak 1): 10 log10(1 / MSE), at most
    PSNR_CAP_DB."""
    squared = tf.square(to_unit_scale(targets) - to_unit_scale(outputs))
    mse = tf.maximum(tf.reduce_mean(squared, axis=[1, 2, 3]), MSE_FLOOR)
    return -10.0 * tf.math.log(mse) / tf.math.log(10.0)


def ssim(outputs, targets):
    """SSIM per image on the [0, 1] scale, in [-1, 1] (1: identical); the mean over channels of
    1- or 3-channel images. H and W must be at least SSIM_FILTER_SIZE."""
    message = (f'SSIM needs images of at least {SSIM_FILTER_SIZE}x{SSIM_FILTER_SIZE} pixels '
               '(the size of its Gaussian filter)')
    height, width = outputs.shape[1:3]
    if height is not None and width is not None and min(height, width) < SSIM_FILTER_SIZE:
        raise ValueError(f'{message}, got {height}x{width}')
    # Sizes known only when the graph runs are checked then.
    with tf.control_dependencies([tf.debugging.assert_greater_equal(
            tf.shape(outputs)[1:3], SSIM_FILTER_SIZE, message=message)]):
        return tf.image.ssim(to_unit_scale(outputs), to_unit_scale(targets), max_val=1.0,
                             filter_size=SSIM_FILTER_SIZE, filter_sigma=SSIM_FILTER_SIGMA,
                             k1=SSIM_K1, k2=SSIM_K2)


def image_metrics(outputs, targets):
    """{name: float32 [batch]} for every name in METRIC_NAMES."""
    functions = {L1: l1, PSNR: psnr, SSIM: ssim}
    return {name: functions[name](outputs, targets) for name in METRIC_NAMES}


def is_better(name, value, reference):
    """Whether `value` of metric `name` is strictly better than `reference` (None: anything
    is better)."""
    if reference is None:
        return True
    return value > reference if HIGHER_IS_BETTER[name] else value < reference
