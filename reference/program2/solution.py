# Program 2 (20CSEL76): classify an image with a pretrained ResNet-50 whose final layer is
# replaced for two classes (cat, dog). The image is the student's own, beside this file.
from pathlib import Path

import torch
import torch.nn as nn
from PIL import Image
from torchvision import models, transforms
from torchvision.models import ResNet50_Weights

CLASS_LABELS = ["cat", "dog"]

preprocess = transforms.Compose([
    transforms.Resize(256),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])

# Pretrained ImageNet weights; the 1000-way head becomes a 2-way one.
model = models.resnet50(weights=ResNet50_Weights.IMAGENET1K_V1)
model.fc = nn.Linear(model.fc.in_features, len(CLASS_LABELS))

image_path = Path(__file__).with_name("cat.jpg")
image = preprocess(Image.open(image_path).convert("RGB")).unsqueeze(0)

model.eval()
with torch.no_grad():
    outputs = model(image)
    predicted = outputs.argmax(dim=1).item()
print(f"The image is classified as: {CLASS_LABELS[predicted]}")
