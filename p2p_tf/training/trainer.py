"""The pix2pix trainer: both networks, both Adam optimizers and the step counter, with one
tf.function train step and one tf.train.Checkpoint covering all of them.

Everything that must survive a restart (both networks, both optimizers, the step counter and
the dropout RNG state) lives in `Trainer.checkpoint`; its object names (generator,
discriminator, generator_optimizer, discriminator_optimizer, step, generator_rng,
discriminator_rng) are what old checkpoints hold, so they stay.
"""

import keras
import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf.nets import generation, losses, models
from p2p_tf.training import performance

LOSS_NAMES = ('gen_total', 'gen_gan', 'gen_l1', 'disc', 'disc_real', 'disc_fake')
# Logged after those when feature_matching_weight > 0: the unweighted feature-matching term,
# which gen_total holds times its weight.
FEATURE_MATCHING_LOSS = 'gen_feature_matching'


def loss_names(config):
    """The names of the losses a config's train step returns, in order."""
    return LOSS_NAMES + ((FEATURE_MATCHING_LOSS,) if config.feature_matching_weight else ())


class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant rate, then linear decay to zero over the last `decay_steps` of `total_steps`
    (the reference code's n_epochs / n_epochs_decay policy)."""

    def __init__(self, learning_rate, total_steps, decay_steps):
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.decay_steps = decay_steps

    def __call__(self, step):
        if not self.decay_steps:
            return tf.constant(self.learning_rate, tf.float32)
        remaining = tf.cast(self.total_steps - step, tf.float32)
        return self.learning_rate * tf.clip_by_value(remaining / self.decay_steps, 0.0, 1.0)

    def get_config(self):
        return dict(learning_rate=self.learning_rate, total_steps=self.total_steps,
                    decay_steps=self.decay_steps)


def unwrapped(optimizer):
    """The Adam inside a LossScaleOptimizer, or the optimizer itself."""
    return getattr(optimizer, 'inner_optimizer', optimizer)


class Trainer:
    """Both networks, both optimizers and the step counter, created under the current
    tf.distribute strategy, with one train step and one checkpoint covering all of them.

    config: fully resolved for `strategy` (distribution.resolve_run): the global batch
    checked, precision, xla and sync_batch_norm fixed.
    """

    def __init__(self, config, total_steps, decay_steps=0, strategy=None):
        self.strategy = strategy or tf.distribute.get_strategy()
        unresolved = [name for name in ('precision', 'xla', 'sync_batch_norm')
                      + performance.CONVOLUTION_PASS_FIELDS if config[name] == config_lib.AUTO]
        if unresolved:
            raise ValueError(f'Trainer needs a config resolved for its strategy '
                             f'(distribution.resolve_run); {", ".join(unresolved)} still auto')
        self.config = config
        self.loss_names = loss_names(config)
        self.precision = config.precision
        with self.strategy.scope():
            options = dict(dtype=self.precision,
                           matmul_weight_gradients=config.matmul_weight_gradients == 'on',
                           fast_transposed_passes=config.fast_transposed_passes == 'on',
                           synchronized_batch_norm=config.sync_batch_norm == 'on',
                           fused_batch_norm=config.fused_batch_norm)
            self.generator = models.generator_from_config(config, **options)
            self.discriminator = models.discriminator_from_config(config, **options)
            schedule = LinearDecay(config.learning_rate, total_steps, decay_steps)
            self.generator_optimizer, self.discriminator_optimizer = (
                performance.adam(config.fused_adam, schedule, config.beta_1, config.beta_2,
                                 self.precision)
                for _ in range(2))
            # Keras 3 creates Adam's moments lazily; build them now so a restore fills them.
            self.generator_optimizer.build(self.generator.trainable_variables)
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
        # The checkpoint holds Adam's own variables, not a float16 loss-scale wrapper's, so a
        # run can resume under another precision (the loss scale re-adapts in a few steps).
        self.checkpoint = tf.train.Checkpoint(
            generator=self.generator, discriminator=self.discriminator,
            generator_optimizer=unwrapped(self.generator_optimizer),
            discriminator_optimizer=unwrapped(self.discriminator_optimizer), step=self.step,
            generator_rng=generation.rng_states(self.generator),
            discriminator_rng=generation.rng_states(self.discriminator))
        self._train_step = tf.function(self._distributed_step, jit_compile=config.xla == 'on')

    def replica_step(self, inputs, targets):
        """One update of D and G on this replica's batch, in config.update_order; returns the
        losses (scaled by 1 / replicas, so summing over replicas gives the global mean)."""
        scale = 1.0 / self.strategy.num_replicas_in_sync
        if self.config.update_order == 'alternating':
            values = self.alternating_updates(inputs, targets, scale)
        else:
            values = self.simultaneous_updates(inputs, targets, scale)
        return {name: value * scale for name, value in zip(self.loss_names, values)}

    def discriminate(self, inputs, images):
        """models.scales of D's training-mode outputs on the pairs (inputs, images)."""
        return models.scales(self.discriminator([inputs, images], training=True))

    def losses(self, generated, targets, real, fake):
        """(gen_total, gen_gan, gen_l1, disc, disc_real, disc_fake) from D's outputs on the
        real and generated pairs (models.scales), then the feature-matching term when it is
        on (the names of self.loss_names)."""
        config = self.config
        real_logits, fake_logits = [logits for _, logits in real], [logits for _, logits in fake]
        matching = (losses.feature_matching([f for f, _ in real], [f for f, _ in fake])
                    if config.feature_matching_weight else 0.0)
        generator_losses = losses.generator_loss(
            fake_logits, generated, targets, config.l1_weight, config.gan_weight,
            config.gan_loss, matching, config.feature_matching_weight)
        return (generator_losses + losses.discriminator_loss(real_logits, fake_logits,
                                                             config.gan_loss)
                + ((matching,) if config.feature_matching_weight else ()))

    @staticmethod
    def scaled(optimizer, loss, scale):
        # scale_loss multiplies by the loss scale under mixed_float16 (apply_gradients divides
        # it out again) and is the identity otherwise. Inside the tape, which must see it.
        return optimizer.scale_loss(loss * scale)

    def simultaneous_updates(self, inputs, targets, scale):
        """G and D updated from one forward pass (the TensorFlow tutorial's step)."""
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated = self.generator(inputs, training=True)
            values = self.losses(generated, targets, self.discriminate(inputs, targets),
                                 self.discriminate(inputs, generated))
            scaled_gen = self.scaled(self.generator_optimizer, values[0], scale)
            scaled_disc = self.scaled(self.discriminator_optimizer, values[3], scale)
        gen_grads = gen_tape.gradient(scaled_gen, self.generator.trainable_variables)
        disc_grads = disc_tape.gradient(scaled_disc, self.discriminator.trainable_variables)
        self.generator_optimizer.apply_gradients(
            zip(gen_grads, self.generator.trainable_variables))
        self.discriminator_optimizer.apply_gradients(
            zip(disc_grads, self.discriminator.trainable_variables))
        return values

    def alternating_updates(self, inputs, targets, scale):
        """A D step on the real pair and the generated one, then a G step through the updated
        D, from one G forward pass: the paper's order (Sec. 3.3: "we alternate between one
        gradient descent step on D, then one step on G") and the authors' code. Returns D's
        losses of its own step and G's of the second."""
        generator, discriminator = self.generator, self.discriminator
        with tf.GradientTape() as gen_tape:
            generated = generator(inputs, training=True)
            with tf.GradientTape() as disc_tape:
                # generated is a constant for D's step: no gradient reaches G through it.
                discriminator_values = self.losses(
                    generated, targets, self.discriminate(inputs, targets),
                    self.discriminate(inputs, tf.stop_gradient(generated)))[3:6]
                disc = discriminator_values[0]
                scaled_disc = self.scaled(self.discriminator_optimizer, disc, scale)
            disc_grads = disc_tape.gradient(scaled_disc, discriminator.trainable_variables)
            self.discriminator_optimizer.apply_gradients(
                zip(disc_grads, discriminator.trainable_variables))
            fake = self.discriminate(inputs, generated)
            # The real pairs again only for feature matching's real features (D's own losses
            # of this pass are not used).
            real = (self.discriminate(inputs, targets) if self.config.feature_matching_weight
                    else fake)
            values = self.losses(generated, targets, real, fake)
            scaled_gen = self.scaled(self.generator_optimizer, values[0], scale)
        gen_grads = gen_tape.gradient(scaled_gen, generator.trainable_variables)
        self.generator_optimizer.apply_gradients(zip(gen_grads, generator.trainable_variables))
        return values[:3] + discriminator_values + values[6:]

    def _distributed_step(self, inputs, targets):
        per_replica = self.strategy.run(self.replica_step, args=(inputs, targets))
        self.step.assign_add(1)
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in per_replica.items()}

    def train_step(self, inputs, targets):
        """Updates both networks on a batch ([batch, H, W, C] in [-1, 1], or distributed
        values); returns a dict of scalar losses: gen_total, gen_gan, gen_l1, disc, disc_real,
        disc_fake (and gen_feature_matching when it is on: self.loss_names)."""
        return self._train_step(inputs, targets)
