# Program 2 of the 20CSEL76 lab manual ("Train a Deep learning model to classify a given
# image using the pre-trained model"), copied exactly as printed in the manual's "Code:"
# section (its two code blocks joined). As printed it does not parse: the last line's
# f-string has no quotes, and the image path is the manual's placeholder.
# Left out: nothing from the code; the manual's printed output and "Applications" text.
import torch
import torch.nn as nn
import torch.optim as optim
from torchvision import datasets, models, transforms
import numpy as np
from PIL import Image

# Define data transformations for preprocessing
data_transforms = {
    'train': transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    ]),
}

# Load a pre-trained ResNet-50 model
model = models.resnet50(pretrained=True)
num_features = model.fc.in_features

# Replace the final fully connected layer for binary classification
model.fc = nn.Linear(num_features, 2)

# Define a loss function and optimizer
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(model.parameters(), lr=0.001, momentum=0.9)

# Load an image to classify
image_path = '/...../Path to Cat1.jpg'
image = Image.open(image_path)
image = data_transforms['train'](image)
image = image.unsqueeze(0) # Add batch dimension
# Load the pre-trained model's weights
#model.load_state_dict(torch.load('/content/drive/MyDrive/20CSEL76-LAB Programs/resnet50-0676ba61.pth'))
# Save the model state dictionary to a file
torch.save(model.state_dict(), 'resnet50_pretrained_weights.pth')
# Set the model to evaluation mode
model.eval()
# Make predictions
with torch.no_grad():
    outputs = model(image)
    _, predicted = torch.max(outputs, 1)
# Map class indices to class labels
class_labels = ['cat', 'dog']
predicted_class = class_labels[predicted.item()]
print(fThe image is classified as: {predicted_class})
