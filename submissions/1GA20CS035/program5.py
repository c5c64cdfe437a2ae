# Program 5 - Object detection using Faster R-CNN
# Priya Nair 1GA20CS035
import torch
import torchvision
import matplotlib.pyplot as plt
import matplotlib.patches as patches
from PIL import Image
from torchvision import transforms

model = torchvision.models.detection.fasterrcnn_resnet50_fpn(pretrained=True)
model.eval()

image = Image.open("street.jpg").convert("RGB")
x = transforms.ToTensor()(image)
with torch.no_grad():
    result = model([x])[0]

fig, ax = plt.subplots(1)
ax.imshow(image)
for box, score in zip(result["boxes"], result["scores"]):
    if score > 0.5:
        x1, y1, x2, y2 = box
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, edgecolor="r", facecolor="none"))
print("Detected", int((result["scores"] > 0.5).sum()), "objects")
plt.savefig("output.png")
plt.show()
