"""DLPRAC activity 1 (reference): a simple neural network classifying MNIST digits.

Load MNIST, define the network (input, hidden and output layers), compile it with a loss and
an optimizer, train it, evaluate it on the test data.
"""
from tensorflow import keras

# 1. Load MNIST: 28x28 grey images of digits, integer labels 0..9
(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
print("Train:", x_train.shape, " Test:", x_test.shape)
x_train = x_train.astype("float32") / 255.0
x_test = x_test.astype("float32") / 255.0

# 2. Define the network: the image flattened (input), two hidden layers, 10-way softmax
model = keras.Sequential(
    [
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ],
    name="mnist_mlp",
)
model.summary()

# 3. Compile: cross-entropy on integer labels, Adam
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

# 4. Train, holding out a tenth of the training digits for validation
model.fit(x_train, y_train, epochs=5, batch_size=64, validation_split=0.1, verbose=2)

# 5. Evaluate on the test digits
test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"Test loss: {test_loss:.4f}")
print(f"Test accuracy: {test_accuracy:.4f}")
