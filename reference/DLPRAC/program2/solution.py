"""DLPRAC activity 2 (reference): a CNN classifying CIFAR-10 images.

Load CIFAR-10, define the CNN (convolution, pooling and dense layers), compile, train,
evaluate on the test data.
"""
from tensorflow import keras

# 1. Load CIFAR-10: 32x32 colour images, labels 0..9 (one column)
(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
print("Train:", x_train.shape, " Test:", x_test.shape)
x_train = x_train.astype("float32") / 255.0
x_test = x_test.astype("float32") / 255.0
y_train = y_train.reshape(-1)
y_test = y_test.reshape(-1)

# 2. Define the CNN: two convolution + pooling blocks, a dense layer, 10-way softmax
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

# 3. Compile
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

# 4. Train
model.fit(x_train, y_train, epochs=10, batch_size=64, validation_split=0.1, verbose=2)

# 5. Evaluate on the test images
test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"Test loss: {test_loss:.4f}")
print(f"Test accuracy: {test_accuracy:.4f}")
