# DL LAB PROGRAM 5
# Object detection using Faster RCNN
# Rohan Kulkarni - 1GA20CS041
import cv2
import torch
import torchvision
from torchvision.transforms import functional as F

model = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights="DEFAULT")
model.eval()

# image path from my laptop
img = cv2.imread("C:/Users/rohan/Desktop/DL lab/traffic.jpg")
rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
with torch.no_grad():
    out = model([F.to_tensor(rgb)])[0]
for b, s in zip(out["boxes"], out["scores"]):
    if s > 0.5:
        x1, y1, x2, y2 = b.int().tolist()
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 255, 0), 2)
cv2.imwrite("result.jpg", img)
print("done")
