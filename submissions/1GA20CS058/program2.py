# Deep Learning Lab - Program 2
# Classify an image using a pretrained model
# Vikram Shetty  USN: 1GA20CS058
import torch
from torchvision import models, transforms
from PIL import Image

model = models.resnet50(pretrained=True)
model.fc = torch.nn.Linear(model.fc.in_features, 2)
model.eval()
preprocess = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor()])
img = preprocess(Image.open("cat.jpg")).unsqueeze(0)
with torch.no_grad():
    out = model(img)
classes = ["cat", "dog"]
print("Predicted:", classes[out.argmax(1).item()]
