"""
Deep Learning Lab (20CSEL76) - Program 3
Train a CNN using Tensorflow and Keras on CIFAR-10
Name: Karthik Hegde    USN: 1GA20CS027
"""
import keras
from keras import layers

keras.utils.set_random_seed(42)

NUM_CLASSES = 10

# 1. Load data
(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
print("Training images :", x_train.shape)
print("Test images     :", x_test.shape)

# 2. Preprocess - scale to [0,1] and one-hot encode labels
x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
y_train = keras.utils.to_categorical(y_train, NUM_CLASSES)
y_test = keras.utils.to_categorical(y_test, NUM_CLASSES)
print("Labels after one-hot:", y_train.shape)

# 3. Model (functional API)
inputs = keras.Input(shape=(32, 32, 3))
x = layers.Conv2D(32, 3, activation="relu", padding="same")(inputs)
x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)
x = layers.MaxPooling2D(2)(x)
x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
x = layers.MaxPooling2D(2)(x)
x = layers.Flatten()(x)
x = layers.Dense(128, activation="relu")(x)
outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
model = keras.Model(inputs, outputs, name="cifar_cnn")

# 4. Compile
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

# 5. Train
model.fit(x_train, y_train, batch_size=128, epochs=12, validation_data=(x_test, y_test))

# 6. Evaluate
score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", round(score[0], 4))
print("Test accuracy: %.2f%%" % (score[1] * 100))
