"""Program 6 (reference): sentiment analysis of IMDB reviews with a recurrent network.

Runs unchanged under Keras 3 and under tf-keras (TF_USE_LEGACY_KERAS=1).
"""
from tensorflow import keras

vocabulary_size = 10000  # keep the 10000 most frequent words
max_words = 400  # reviews are cut or padded to this many words

# Load the IMDB reviews: lists of word ids, labels 1 (positive) / 0 (negative)
(x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data(num_words=vocabulary_size)
print("Train:", len(x_train), "reviews  Test:", len(x_test), "reviews")

# Show one review as words (ids are offset by 3: 0 pad, 1 start, 2 unknown)
word_index = keras.datasets.imdb.get_word_index()
id_to_word = {i + 3: w for w, i in word_index.items()}
print("Review:", " ".join(id_to_word.get(i, "?") for i in x_train[0][1:30]), "...")
print("Label:", y_train[0])

# Pad (or cut) every review to the same length
x_train = keras.preprocessing.sequence.pad_sequences(x_train, maxlen=max_words)
x_test = keras.preprocessing.sequence.pad_sequences(x_test, maxlen=max_words)

# Word embeddings, a recurrent layer reading the review, one sigmoid output
model = keras.Sequential(
    [
        keras.Input(shape=(max_words,)),
        keras.layers.Embedding(vocabulary_size, 32),
        keras.layers.GRU(32),
        keras.layers.Dense(1, activation="sigmoid"),
    ],
    name="imdb_rnn",
)
model.summary()
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])

# Train, keeping a fifth of the training reviews for validation
model.fit(x_train, y_train, validation_split=0.2, batch_size=64, epochs=3)

# Evaluate on the test reviews
test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"Test loss: {test_loss:.4f}")
print(f"Test accuracy: {test_accuracy:.4f}")
