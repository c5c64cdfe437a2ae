# DL LAB PROGRAM 2
# Image classification with a pretrained ResNet50
# Rohan Kulkarni - 1GA20CS041
import torch
import torchvision.models as models
import torchvision.transforms as T
from PIL import Image

model = models.resnet50(weights="IMAGENET1K_V1")
model.fc = torch.nn.Linear(model.fc.in_features, 2)
model.eval()
class_names = ["cat", "dog"]

pre = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                 T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
x = pre(Image.open("cat.jpg").convert("RGB"))[None]
with torch.no_grad():
    idx = model(x).argmax().item()
print("This image is a", class_names[idx])
