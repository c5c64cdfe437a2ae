# Program 5: object detection with Faster R-CNN (a CNN variant)
# Ananya Rao, 1GA20CS012
import cv2
import torch
import torchvision
from torchvision.transforms import functional as F

weights = torchvision.models.detection.FasterRCNN_ResNet50_FPN_Weights.DEFAULT
names = weights.meta["categories"]
model = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=weights)
model.eval()

img = cv2.imread("street.jpg")
tensor = F.to_tensor(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
with torch.no_grad():
    det = model([tensor])[0]

count = 0
for box, label, score in zip(det["boxes"], det["labels"], det["scores"]):
    if score < 0.6:
        continue
    x1, y1, x2, y2 = map(int, box.tolist())
    cv2.rectangle(img, (x1, y1), (x2, y2), (255, 0, 0), 2)
    cv2.putText(img, names[label], (x1, y1 - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 0, 0), 1)
    print(names[label], round(score.item(), 2), (x1, y1, x2, y2))
    count += 1
print("objects found:", count)
cv2.imwrite("detected.jpg", img)
