"""Activity 5: a GAN that generates MNIST-like digits (reference solution, PyTorch).

A small dense generator (noise -> 28x28 image in [-1, 1], tanh) and discriminator (image ->
one score, sigmoid), each with its own optimizer, trained in alternation: the discriminator
on real and generated digits (the generated ones detached), then the generator through the
discriminator on noise labelled "real" (only the generator's optimizer steps).
"""

import torch
from torch import nn
from torchvision import datasets, transforms

LATENT = 64
BATCH = 256
STEPS = 800

torch.manual_seed(0)
torch.set_num_threads(1)  # a small dense model: one thread is fastest, and fair to a shared machine
data = datasets.MNIST("data", train=True, download=True, transform=transforms.ToTensor())
x_train = data.data.float().div(127.5).sub(1.0)  # pixels in [-1, 1], as tanh gives

generator = nn.Sequential(
    nn.Linear(LATENT, 256), nn.LeakyReLU(0.2),
    nn.Linear(256, 512), nn.LeakyReLU(0.2),
    nn.Linear(512, 28 * 28), nn.Tanh(),
    nn.Unflatten(1, (28, 28)),
)
discriminator = nn.Sequential(
    nn.Flatten(),
    nn.Linear(28 * 28, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3),
    nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3),
    nn.Linear(256, 1), nn.Sigmoid(),
)
loss_fn = nn.BCELoss()
opt_d = torch.optim.Adam(discriminator.parameters(), lr=5e-4, betas=(0.5, 0.999))
opt_g = torch.optim.Adam(generator.parameters(), lr=5e-4, betas=(0.5, 0.999))

real_labels, fake_labels = torch.full((BATCH, 1), 0.9), torch.zeros((BATCH, 1))
for step in range(STEPS):
    real = x_train[torch.randint(0, len(x_train), (BATCH,))]
    fake = generator(torch.randn(BATCH, LATENT))
    opt_d.zero_grad()
    d_loss = loss_fn(discriminator(torch.cat([real, fake.detach()])), torch.cat([real_labels, fake_labels]))
    d_loss.backward()
    opt_d.step()
    opt_g.zero_grad()
    g_loss = loss_fn(discriminator(generator(torch.randn(BATCH, LATENT))), torch.ones((BATCH, 1)))
    g_loss.backward()
    opt_g.step()
    if step % 100 == 0:
        print(f"step {step}: d_loss {d_loss.item():.3f} g_loss {g_loss.item():.3f}")

generator.eval()
with torch.no_grad():
    samples = generator(torch.randn(16, LATENT))
print("generated", tuple(samples.shape), "range", float(samples.min()), float(samples.max()))
