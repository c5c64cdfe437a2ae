"""
Deep Learning Lab (20CSEL76) - Program 1
CIFAR-10 with a. KNN  b. a 3-layer neural network
Name: Karthik Hegde    USN: 1GA20CS027
"""
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from sklearn.datasets import fetch_openml
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.metrics import accuracy_score
import torchvision
import torchvision.transforms as transforms

# ---- a. KNN ----
data = fetch_openml("CIFAR_10_small", as_frame=False)
X = data.data / 255.0
y = data.target.astype(int)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
knn = KNeighborsClassifier(n_neighbors=3)
knn.fit(X_train, y_train)
pred = knn.predict(X_test)
print("KNN Accuracy:", accuracy_score(y_test, pred))

# ---- b. 3-layer network ----
transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
trainset = torchvision.datasets.CIFAR10(root="./data", train=True, download=True, transform=transform)
testset = torchvision.datasets.CIFAR10(root="./data", train=False, download=True, transform=transform)
trainloader = torch.utils.data.DataLoader(trainset, batch_size=32, shuffle=True)
testloader = torch.utils.data.DataLoader(testset, batch_size=100)

net = nn.Sequential(nn.Flatten(), nn.Linear(3072, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

for epoch in range(5):
    running = 0.0
    for inputs, labels in trainloader:
        optimizer.zero_grad()
        loss = criterion(net(inputs), labels)
        loss.backward()
        optimizer.step()
        running += loss.item()
    print("epoch", epoch + 1, "loss", running / len(trainloader))

correct, total = 0, 0
net.eval()
with torch.no_grad():
    for inputs, labels in testloader:
        _, predicted = torch.max(net(inputs), 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()
print("Neural network accuracy:", correct / total)
