# Program 6: sentiment analysis on IMDB reviews with an LSTM
# Ananya Rao, 1GA20CS012
from tensorflow import keras
from tensorflow.keras import layers

VOCAB = 10000
MAXLEN = 200

(x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data(num_words=VOCAB)
x_train = keras.utils.pad_sequences(x_train, maxlen=MAXLEN)
x_test = keras.utils.pad_sequences(x_test, maxlen=MAXLEN)

model = keras.Sequential([
    keras.Input(shape=(MAXLEN,)),
    layers.Embedding(VOCAB, 32),
    layers.LSTM(32),
    layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.summary()
model.fit(x_train, y_train, epochs=3, batch_size=128, validation_split=0.2)

loss, acc = model.evaluate(x_test, y_test, verbose=0)
print(f"Test accuracy: {acc * 100:.2f}%")
