"""DLPRAC activity 4 (reference): transfer learning. A VGG16 base pretrained on ImageNet,
frozen, with a new head for the classes of a custom dataset: the images in data/<class>/
beside this program (one folder per class).

Load the pretrained model, modify it for the custom classes, preprocess the custom dataset,
train the modified model, evaluate it on the validation images.
"""
from tensorflow import keras

IMAGE_SIZE = (32, 32)

# 3. Preprocess the custom dataset: the images of data/<class>/, resized, in batches; a
#    quarter of them kept apart for validation (the same seed splits both subsets alike)
train_ds = keras.utils.image_dataset_from_directory(
    "data", validation_split=0.25, subset="training", seed=42, image_size=IMAGE_SIZE, batch_size=16)
val_ds = keras.utils.image_dataset_from_directory(
    "data", validation_split=0.25, subset="validation", seed=42, image_size=IMAGE_SIZE, batch_size=16)
class_names = train_ds.class_names
print("Classes:", class_names)

# 1. Load the pretrained model without its ImageNet classifier, and freeze it
base = keras.applications.VGG16(weights="imagenet", include_top=False, input_shape=IMAGE_SIZE + (3,))
base.trainable = False

# 2. Modify it: scale the pixels, the frozen base, a new head with one output per class
model = keras.Sequential(
    [
        keras.Input(shape=IMAGE_SIZE + (3,)),
        keras.layers.Rescaling(1.0 / 255),
        base,
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.BatchNormalization(),  # the base's features brought to one scale
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(len(class_names), activation="softmax"),
    ],
    name="vgg16_transfer",
)
model.summary()
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])

# 4. Train the new head on the custom images
model.fit(train_ds, validation_data=val_ds, epochs=10)

# 5. Evaluate on the validation images
val_loss, val_accuracy = model.evaluate(val_ds, verbose=0)
print(f"Validation loss: {val_loss:.4f}")
print(f"Validation accuracy: {val_accuracy:.4f}")
