# Deep Learning Lab - Program 6
# Sentiment analysis using RNN
# Vikram Shetty  USN: 1GA20CS058
import numpy as np
from keras.datasets import imdb
from keras.models import Sequential
from keras.layers import Embedding, SimpleRNN, Dense

(X_train, y_train), (X_test, y_test) = imdb.load_data(num_words=5000)
print("Training reviews:", len(X_train))

model = Sequential()
model.add(Embedding(5000, 32))
model.add(SimpleRNN(32))
model.add(Dense(1, activation="sigmoid"))
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(np.array(X_train), y_train, epochs=3, batch_size=64)
print("Accuracy:", model.evaluate(np.array(X_test), y_test)[1])
