# Program 2: classify a given image with a pre-trained model (ResNet-50, transfer learning)
# Ananya Rao, 1GA20CS012
import torch
import torch.nn as nn
from PIL import Image
from torchvision import models, transforms

classes = ["cat", "dog"]

transform = transforms.Compose([
    transforms.Resize(256),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
])

# pretrained on ImageNet; last layer replaced for our 2 classes
model = models.resnet50(weights=models.ResNet50_Weights.DEFAULT)
num_features = model.fc.in_features
model.fc = nn.Linear(num_features, len(classes))
model.eval()

img = Image.open("cat.jpg").convert("RGB")
batch = transform(img).unsqueeze(0)

with torch.no_grad():
    out = model(batch)
    probs = torch.softmax(out, dim=1)[0]
pred = int(probs.argmax())
print("Predicted class:", classes[pred], f"({probs[pred].item():.2f})")
