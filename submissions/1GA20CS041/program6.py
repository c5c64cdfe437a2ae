# DL LAB PROGRAM 6
# Sentiment analysis with a bidirectional GRU
# Rohan Kulkarni - 1GA20CS041
import tensorflow as tf
from tensorflow import keras

(xtr, ytr), (xte, yte) = keras.datasets.imdb.load_data(num_words=8000)
xtr = keras.preprocessing.sequence.pad_sequences(xtr, maxlen=250)
xte = keras.preprocessing.sequence.pad_sequences(xte, maxlen=250)

model = keras.Sequential([
    keras.layers.Embedding(8000, 32),
    keras.layers.Bidirectional(keras.layers.GRU(24)),
    keras.layers.Dropout(0.3),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"])
hist = model.fit(xtr, ytr, epochs=4, batch_size=64, validation_data=(xte, yte))
results = model.evaluate(xte, yte)
print("loss, accuracy:", results)
