# Program 5 (20CSEL76): object detection with a pretrained Faster R-CNN (ResNet-50 FPN).
# The image is the student's own, beside this file; the detections are drawn with OpenCV.
from pathlib import Path

import cv2
import torch
import torchvision
from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights
from torchvision.transforms import functional as F

THRESHOLD = 0.5
weights = FasterRCNN_ResNet50_FPN_Weights.COCO_V1
categories = weights.meta["categories"]

model = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=weights)
model.eval()

image_path = str(Path(__file__).with_name("street.jpg"))
image = cv2.imread(image_path)
rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

with torch.no_grad():
    prediction = model([F.to_tensor(rgb)])[0]

keep = prediction["scores"] >= THRESHOLD
boxes, labels, scores = prediction["boxes"][keep], prediction["labels"][keep], prediction["scores"][keep]
print(f"{len(boxes)} objects detected with score >= {THRESHOLD}")
for (x1, y1, x2, y2), label, score in zip(boxes.int().tolist(), labels.tolist(), scores.tolist()):
    cv2.rectangle(image, (x1, y1), (x2, y2), (0, 255, 0), 2)
    cv2.putText(image, f"{categories[label]} {score:.2f}", (x1, max(y1 - 4, 10)),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1)
    print(f"{categories[label]}: {score:.2f} at {(x1, y1, x2, y2)}")

try:
    from google.colab.patches import cv2_imshow
except ImportError:  # outside Colab: save the picture instead
    cv2.imwrite(str(Path(__file__).with_name("detections.jpg")), image)
else:
    cv2_imshow(image)
