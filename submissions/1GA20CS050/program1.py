# Program 1: CIFAR-10 using KNN
# Sneha Reddy (1GA20CS050)
import numpy as np
import torch
from torchvision import datasets, transforms
from sklearn.neighbors import KNeighborsClassifier
from sklearn.metrics import accuracy_score, classification_report

tf = transforms.Compose([transforms.ToTensor()])
train = datasets.CIFAR10(root="data", train=True, download=True, transform=tf)
test = datasets.CIFAR10(root="data", train=False, download=True, transform=tf)

Xtr = np.stack([img.numpy().ravel() for img, _ in train])
ytr = np.array(train.targets)
Xte = np.stack([img.numpy().ravel() for img, _ in test])
yte = np.array(test.targets)

model = KNeighborsClassifier(n_neighbors=5)
model.fit(Xtr, ytr)
pred = model.predict(Xte)
print("Accuracy of KNN:", accuracy_score(yte, pred))
print(classification_report(yte, pred))
# part b (neural network) - could not finish in lab
