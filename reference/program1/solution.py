"""Program 1 (reference): CIFAR-10 classified a. with k-nearest neighbours (scikit-learn)
and b. with a 3-layer fully-connected neural network (PyTorch)."""
import torch
import torch.nn as nn
from sklearn.datasets import fetch_openml
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

# ---------------------------------------------------------------- a. KNN

# OpenML's CIFAR_10_small: one row of 3072 pixel values per image, the class as a string
cifar = fetch_openml(name="CIFAR_10_small", as_frame=False)
X = cifar.data.astype("float32")
y = cifar.target.astype(int)

# Hold out a fifth of the images, keeping the class balance
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)

# Distances need comparable features: scale each pixel with the training statistics
scaler = StandardScaler()
X_train = scaler.fit_transform(X_train)
X_test = scaler.transform(X_test)

knn = KNeighborsClassifier(n_neighbors=5, weights="distance")
knn.fit(X_train, y_train)
knn_accuracy = knn.score(X_test, y_test)
print(f"KNN accuracy: {knn_accuracy:.4f}")

# ---------------------------------------------------------------- b. 3-layer network

torch.manual_seed(0)


class ThreeLayerNet(nn.Module):
    """Flattened image -> 512 -> 256 -> 10 class scores (softmax is in the loss)."""

    def __init__(self, inputs=32 * 32 * 3, classes=10):
        super().__init__()
        self.fc1 = nn.Linear(inputs, 512)
        self.fc2 = nn.Linear(512, 256)
        self.fc3 = nn.Linear(256, classes)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


# Pixels to tensors in [-1, 1]
transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
train_set = datasets.CIFAR10(root="./data", train=True, transform=transform, download=True)
test_set = datasets.CIFAR10(root="./data", train=False, transform=transform, download=True)
train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
test_loader = DataLoader(test_set, batch_size=256)

model = ThreeLayerNet()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
criterion = nn.CrossEntropyLoss()

for epoch in range(10):
    model.train()
    total, batches = 0.0, 0
    for images, labels in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        total, batches = total + loss.item(), batches + 1
    print(f"epoch {epoch + 1}: loss {total / batches:.4f}")

# Accuracy on the test images
model.eval()
correct = seen = 0
with torch.no_grad():
    for images, labels in test_loader:
        correct += (model(images).argmax(dim=1) == labels).sum().item()
        seen += labels.size(0)
print(f"3-layer network accuracy: {correct / seen:.4f}")
