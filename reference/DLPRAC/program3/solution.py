"""DLPRAC activity 3 (reference): an LSTM classifying IMDB reviews as positive or negative.

Load IMDB, preprocess the text (the reviews come as word ids, i.e. tokenised; pad them to
one length), define the LSTM, compile, train, evaluate on the test data.
"""
from tensorflow import keras

vocabulary_size = 10000  # the 10000 most frequent words
max_words = 200  # each review cut or padded to this many words

# 1. Load IMDB: each review a list of word ids, label 1 positive / 0 negative
(x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data(num_words=vocabulary_size)
print("Train:", len(x_train), "reviews  Test:", len(x_test), "reviews")

# 2. Preprocess: the word index turns ids back into words (ids are offset by 3); padding
#    makes every review the same length
word_index = keras.datasets.imdb.get_word_index()
id_to_word = {i + 3: w for w, i in word_index.items()}
print("Review:", " ".join(id_to_word.get(i, "?") for i in x_train[0][1:20]), "...")
x_train = keras.preprocessing.sequence.pad_sequences(x_train, maxlen=max_words)
x_test = keras.preprocessing.sequence.pad_sequences(x_test, maxlen=max_words)

# 3. Define: word embeddings, an LSTM reading the review, one sigmoid output
model = keras.Sequential(
    [
        keras.Input(shape=(max_words,)),
        keras.layers.Embedding(vocabulary_size, 32),
        keras.layers.LSTM(32),
        keras.layers.Dense(1, activation="sigmoid"),
    ],
    name="imdb_lstm",
)
model.summary()

# 4. Compile
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])

# 5. Train
model.fit(x_train, y_train, validation_split=0.2, batch_size=64, epochs=3)

# 6. Evaluate on the test reviews
test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"Test loss: {test_loss:.4f}")
print(f"Test accuracy: {test_accuracy:.4f}")
