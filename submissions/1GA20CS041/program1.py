# DL LAB PROGRAM 1
# CIFAR-10 with KNN and with a 3 layer neural network
# Rohan Kulkarni - 1GA20CS041
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import fetch_openml
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from torchvision import datasets, transforms

X, y = fetch_openml("CIFAR_10_small", return_X_y=True, as_frame=False)
y = y.astype(int)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=1)
sc = StandardScaler().fit(X_tr)
knn = KNeighborsClassifier(n_neighbors=5, weights="distance")
knn.fit(sc.transform(X_tr), y_tr)
print("KNN test accuracy: %.3f" % knn.score(sc.transform(X_te), y_te))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(3 * 32 * 32, 400)
        self.l2 = nn.Linear(400, 200)
        self.l3 = nn.Linear(200, 10)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        return self.l3(F.relu(self.l2(F.relu(self.l1(x)))))


tfm = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
train = torch.utils.data.DataLoader(datasets.CIFAR10("./cifar", True, tfm, download=True), batch_size=128, shuffle=True)
test = torch.utils.data.DataLoader(datasets.CIFAR10("./cifar", False, tfm, download=True), batch_size=512)
net = Net()
opt = torch.optim.Adam(net.parameters(), lr=0.001)
for ep in range(8):
    for xb, yb in train:
        opt.zero_grad()
        F.cross_entropy(net(xb), yb).backward()
        opt.step()
net.eval()
hits = n = 0
with torch.no_grad():
    for xb, yb in test:
        hits += (net(xb).argmax(1) == yb).sum().item()
        n += len(yb)
print("3-layer NN test accuracy: %.3f" % (hits / n))
