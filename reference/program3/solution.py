"""Program 3 (reference): train a CNN on CIFAR-10 with TensorFlow and Keras.

Runs unchanged under Keras 3 and under tf-keras (TF_USE_LEGACY_KERAS=1).
"""
import numpy as np
from tensorflow import keras

# Load the CIFAR-10 dataset: 32x32 RGB images, integer labels 0..9
(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
print("Train:", x_train.shape, y_train.shape, " Test:", x_test.shape, y_test.shape)

# Scale pixels to [0, 1]; keep the labels as integers (sparse labels)
x_train = x_train.astype("float32") / 255.0
x_test = x_test.astype("float32") / 255.0
y_train = y_train.reshape(-1).astype("int64")
y_test = y_test.reshape(-1).astype("int64")

# A small CNN: two convolution blocks, then a dense classifier
model = keras.Sequential(
    [
        keras.Input(shape=(32, 32, 3)),
        keras.layers.Conv2D(32, (3, 3), padding="same", activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Conv2D(64, (3, 3), padding="same", activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ],
    name="cifar10_cnn",
)
model.summary()

# Compile: Adam, cross-entropy on integer labels, accuracy
model.compile(
    optimizer="adam",
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)

# Train, holding out 20% of the training images for validation
history = model.fit(
    x_train,
    y_train,
    epochs=10,
    batch_size=64,
    validation_split=0.2,
    verbose=2,
)

# Evaluate on the test set
test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"Test loss: {test_loss:.4f}")
print(f"Test accuracy: {test_accuracy * 100:.2f}%")

# Cross-check with the model's own predictions
predictions = np.argmax(model.predict(x_test, verbose=0), axis=1)
print(f"Accuracy from predictions: {np.mean(predictions == y_test) * 100:.2f}%")
