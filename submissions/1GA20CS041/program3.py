# DL LAB PROGRAM 3
# CNN on CIFAR10 dataset using keras
# Rohan Kulkarni - 1GA20CS041
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras.utils import to_categorical

(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()

x_train = x_train.astype('float32') / 255
x_test = x_test.astype('float32') / 255

# convert labels to one hot
y_train = to_categorical(y_train, 10)
y_test = to_categorical(y_test, 10)
print('y_train shape:', y_train.shape)

model = keras.Sequential()
model.add(keras.layers.Conv2D(32, (3, 3), activation='relu', input_shape=(32, 32, 3)))
model.add(keras.layers.MaxPooling2D(pool_size=(2, 2)))
model.add(keras.layers.Conv2D(64, (3, 3), activation='relu'))
model.add(keras.layers.MaxPooling2D(pool_size=(2, 2)))
model.add(keras.layers.Flatten())
model.add(keras.layers.Dense(128, activation='relu'))
model.add(keras.layers.Dense(10, activation='softmax'))

# compile model
model.compile(loss='binary_crossentropy', optimizer='adam', metrics=['accuracy'])

model.fit(x_train, y_train, batch_size=64, epochs=10, validation_split=0.2)

test_loss, test_acc = model.evaluate(x_test, y_test)
print("Test accuracy: {:.2f}%".format(test_acc * 100))
