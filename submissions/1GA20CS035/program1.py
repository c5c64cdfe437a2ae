# Program 1 - CIFAR-10: a. KNN  b. neural network
# Priya Nair 1GA20CS035
import numpy as np
import torch
import torch.nn as nn
from torchvision import datasets, transforms
from torch.utils.data import DataLoader
from sklearn.neighbors import KNeighborsClassifier

transform = transforms.ToTensor()
train_data = datasets.CIFAR10("data", train=True, download=True, transform=transform)
test_data = datasets.CIFAR10("data", train=False, download=True, transform=transform)

# a. KNN on flattened pixels
x_train = train_data.data.reshape(len(train_data.data), -1) / 255.0
y_train = np.array(train_data.targets)
x_test = test_data.data.reshape(len(test_data.data), -1) / 255.0
y_test = np.array(test_data.targets)
knn = KNeighborsClassifier(n_neighbors=7)
knn.fit(x_train, y_train)
print("KNN accuracy =", knn.score(x_test, y_test))

# b. neural network (I added one more hidden layer for better accuracy)
model = nn.Sequential(
    nn.Flatten(),
    nn.Linear(3072, 512), nn.ReLU(),
    nn.Linear(512, 256), nn.ReLU(),
    nn.Linear(256, 128), nn.ReLU(),
    nn.Linear(128, 10),
)
loader = DataLoader(train_data, batch_size=64, shuffle=True)
opt = torch.optim.Adam(model.parameters(), lr=0.001)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(5):
    for xb, yb in loader:
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
    print("epoch", epoch, "loss", loss.item())

model.eval()
correct = 0
with torch.no_grad():
    for xb, yb in DataLoader(test_data, batch_size=500):
        correct += (model(xb).argmax(1) == yb).sum().item()
print("Network accuracy =", correct / len(test_data))
