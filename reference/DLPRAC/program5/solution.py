"""Activity 5: a GAN that generates MNIST-like digits (reference solution, Keras).

A small dense generator (noise -> 28x28 image in [-1, 1], tanh) and discriminator (image ->
one score, sigmoid), trained in alternation with train_on_batch: the discriminator on a
batch of real and generated digits together, then the stacked model (generator followed by
the frozen discriminator) on noise labelled "real".
"""

import sys

import numpy as np
import keras
from keras import layers
from keras.datasets import mnist

LATENT = 64
BATCH = 256
STEPS = 800

keras.utils.set_random_seed(0)
(x_train, _), (_, _) = mnist.load_data()
x_train = (x_train.astype("float32") - 127.5) / 127.5  # pixels in [-1, 1], as tanh gives

generator = keras.Sequential([
    keras.Input((LATENT,)),
    layers.Dense(256), layers.LeakyReLU(0.2),
    layers.Dense(512), layers.LeakyReLU(0.2),
    layers.Dense(28 * 28, activation="tanh"),
    layers.Reshape((28, 28)),
], name="generator")

discriminator = keras.Sequential([
    keras.Input((28, 28)),
    layers.Flatten(),
    layers.Dense(512), layers.LeakyReLU(0.2), layers.Dropout(0.3),
    layers.Dense(256), layers.LeakyReLU(0.2), layers.Dropout(0.3),
    layers.Dense(1, activation="sigmoid"),
], name="discriminator")
discriminator.compile(optimizer=keras.optimizers.Adam(5e-4, beta_1=0.5), loss="binary_crossentropy")

# The stacked model trains the generator only: the discriminator is frozen inside it.
discriminator.trainable = False
gan = keras.Sequential([generator, discriminator], name="gan")
gan.compile(optimizer=keras.optimizers.Adam(5e-4, beta_1=0.5), loss="binary_crossentropy")

rng = np.random.default_rng(0)
real_labels, fake_labels = np.full((BATCH, 1), 0.9), np.zeros((BATCH, 1))  # one-sided label smoothing
for step in range(STEPS):
    real = x_train[rng.integers(0, len(x_train), BATCH)]
    noise = rng.normal(size=(BATCH, LATENT)).astype("float32")
    fake = generator(noise, training=False).numpy()
    discriminator.trainable = True
    d_loss = discriminator.train_on_batch(np.concatenate([real, fake]), np.concatenate([real_labels, fake_labels]))
    discriminator.trainable = False
    g_loss = gan.train_on_batch(rng.normal(size=(BATCH, LATENT)).astype("float32"), np.ones((BATCH, 1)))
    if step % 100 == 0:
        print(f"step {step}: d_loss {float(d_loss):.3f} g_loss {float(g_loss):.3f}")

samples = generator.predict(rng.normal(size=(1000, LATENT)).astype("float32"), verbose=0)
print("generated", samples.shape, "range", float(samples.min()), float(samples.max()))
if len(sys.argv) > 1:
    np.save(sys.argv[1], samples)
