# Program 3 as students write it in PyTorch: on the GPU when there is one.
import torch
from torch import nn
from torchvision import datasets, transforms

device = "cuda" if torch.cuda.is_available() else "cpu"
print("device:", device, torch.cuda.get_device_name(0) if device == "cuda" else "")
data = lambda train: datasets.CIFAR10("data", train=train, download=True, transform=transforms.ToTensor())
train_dl = torch.utils.data.DataLoader(data(True), batch_size=128, shuffle=True)
test_dl = torch.utils.data.DataLoader(data(False), batch_size=512)
net = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10)).to(device)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for epoch in range(5):
    net.train()
    for xb, yb in train_dl:
        xb, yb = xb.to(device), yb.to(device)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(xb), yb)
        loss.backward()
        opt.step()
    print(f"epoch {epoch + 1} loss {loss.item():.3f}")
net.eval()
with torch.no_grad():
    hits = sum((net(xb.to(device)).argmax(1).cpu() == yb).sum().item() for xb, yb in test_dl)
print("Test accuracy:", hits / len(test_dl.dataset))
if device == "cuda":
    print("peak GPU memory MB:", round(torch.cuda.max_memory_allocated() / 2**20))
