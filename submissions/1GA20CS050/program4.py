# Program 4: improve the CNN by tuning hyperparameters
# Sneha Reddy (1GA20CS050)
import numpy as np
import tensorflow as tf
from tensorflow import keras

(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
x_train = x_train / 255.0
x_test = x_test / 255.0
print("train:", x_train.shape, y_train.shape)

# hyperparameters tried: batch size 32/64/128, dropout 0.2/0.3/0.5
BATCH = 32
DROPOUT = 0.3

model = keras.Sequential([
    keras.layers.Conv2D(32, (3, 3), activation="relu", padding="same", input_shape=(32, 32, 3)),
    keras.layers.BatchNormalization(),
    keras.layers.Conv2D(32, (3, 3), activation="relu", padding="same"),
    keras.layers.MaxPooling2D((2, 2)),
    keras.layers.Dropout(DROPOUT),
    keras.layers.Conv2D(64, (3, 3), activation="relu", padding="same"),
    keras.layers.BatchNormalization(),
    keras.layers.MaxPooling2D((2, 2)),
    keras.layers.Dropout(DROPOUT),
    keras.layers.Flatten(),
    keras.layers.Dense(128, activation="relu"),
    keras.layers.Dense(10, activation="softmax")
])

# categorical crossentropy is for multi class problems
model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.0005),
              loss="categorical_crossentropy",
              metrics=["accuracy"])

history = model.fit(x_train, y_train, epochs=20, batch_size=BATCH, validation_split=0.1)

test_loss, test_acc = model.evaluate(x_test, y_test)
print("Test accuracy:", test_acc)
