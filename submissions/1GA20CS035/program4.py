# Program 4 - Improve the CNN model by tuning hyperparameters
# Priya Nair 1GA20CS035

import tensorflow as tf
from tensorflow import keras

(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
print(x_train.shape)
print(x_test.shape)

x_train = x_train / 255.0
x_test = x_test / 255.0

# hyperparameters
learning_rate = 0.00001   # small learning rate so that model does not overshoot
epochs = 1                # less epochs to avoid overfitting
batch_size = 256

model = keras.Sequential([
    keras.layers.Conv2D(16, (3, 3), activation='relu', input_shape=(32, 32, 3)),
    keras.layers.MaxPooling2D((2, 2)),
    keras.layers.Flatten(),
    keras.layers.Dense(32, activation='relu'),
    keras.layers.Dropout(0.5),
    keras.layers.Dense(10, activation='softmax')
])

opt = keras.optimizers.Adam(learning_rate=learning_rate)
model.compile(optimizer=opt, loss='sparse_categorical_crossentropy', metrics=['accuracy'])

model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, validation_data=(x_test, y_test))

loss, acc = model.evaluate(x_test, y_test)
print("Test accuracy:", acc * 100)
