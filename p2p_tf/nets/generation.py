"""Calling a trained generator: the two inference modes and the dropout seeding that makes
paper-mode calls reproducible. Training's samples, evaluation and serving all call it here.

- 'paper' (default): dropout stays on and BatchNorm uses the statistics of the batch being
  translated, as the paper does at test time (Sec. 3.2, 4.1) and the TensorFlow tutorial does.
  Outputs vary slightly between calls. The model's stored BatchNorm averages are left unchanged.
- 'eval': the Keras inference mode, deterministic: no dropout, BatchNorm moving averages.
"""

import contextlib

import numpy as np

from p2p_tf.datasets import preprocessing
from p2p_tf.errors import UserError

MODES = ('paper', 'eval')


def check_mode(mode: str) -> str:
    """`mode` if it is one of MODES, else a UserError."""
    if mode not in MODES:
        raise UserError(f'mode must be one of {MODES}, got {mode!r}')
    return mode


def generate(generator, inputs, mode='paper'):
    """[batch, H, W, C_in] float32 in [-1, 1] -> [batch, H, W, C_out] in [-1, 1].

    H and W must be multiples of 2**depth of the generator (256 for the paper's net).
    """
    if check_mode(mode) == 'eval':
        return generator(inputs, training=False)
    # A plain training-mode call would also move BatchNorm's averages, so paper-mode calls
    # would change what later eval-mode calls return. The stateless call leaves the model's
    # variables alone; only the dropout RNG states are advanced, so calls keep varying.
    outputs, non_trainable = generator.stateless_call(
        [v.value for v in generator.trainable_variables],
        [v.value for v in generator.non_trainable_variables], inputs, training=True)
    for variable, value in zip(generator.non_trainable_variables, non_trainable):
        if 'seed_generator_state' in variable.path:
            variable.assign(value)
    return outputs


def rng_states(model):
    """The dropout layers' seed-generator states, int64 [2] variables each. tf.train.Checkpoint
    does not reach them through the Keras model, so training's checkpoint names them
    explicitly."""
    return [variable for variable in model.variables if 'seed_generator_state' in variable.path]


@contextlib.contextmanager
def seeded_dropout(model, seed):
    """Within the block, the dropout of paper-mode calls draws from states derived from `seed`
    alone, so the same calls give the same outputs every time; afterwards the states are put
    back, leaving every variable of the model as it was."""
    states = rng_states(model)
    saved = [np.asarray(state) for state in states]
    # One stream per dropout layer, as Keras' SeedGenerator states are: [seed, counter].
    starts = np.random.default_rng(seed).integers(0, 2 ** 31 - 1, size=len(states))
    for state, start in zip(states, starts):
        state.assign(np.array([start, 0], dtype=state.dtype))
    try:
        yield
    finally:
        for state, value in zip(states, saved):
            state.assign(value)


def generate_any_size(generator, inputs, multiple, mode='paper'):
    """[batch, H, W, C_in] float32 in [-1, 1], any H and W -> [batch, H, W, C_out]: mirror-pads
    to multiples of `multiple` (2**depth), generates and crops back. Works in a tf.function."""
    padded, window = preprocessing.pad_to_multiple(inputs, multiple)
    return preprocessing.crop_padding(generate(generator, padded, mode), window)
