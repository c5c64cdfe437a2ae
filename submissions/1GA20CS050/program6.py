# Program 6: sentiment analysis of movie reviews with an LSTM
# Sneha Reddy (1GA20CS050)
import numpy as np
from tensorflow import keras
from tensorflow.keras import layers

(x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data(num_words=10000)
x_train = keras.utils.pad_sequences(x_train, maxlen=200)
x_test = keras.utils.pad_sequences(x_test, maxlen=200)

model = keras.Sequential([
    keras.Input(shape=(200,)),
    layers.Embedding(10000, 64),
    layers.LSTM(64),
    layers.Dense(1, activation="softmax"),
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=3, batch_size=64)
score = model.evaluate(x_test, y_test)
print("Test accuracy:", score[1])
