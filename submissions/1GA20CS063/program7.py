# -*- coding: utf-8 -*-
"""DL_Lab_Program7.ipynb
Meghana Gowda 1GA20CS063
"""
import numpy as np
import tensorflow as tf
from tensorflow.keras.layers import TextVectorization, Embedding, LSTM, Dense

conversations = [("hello", "hi, how can i help"), ("how are you", "i am good"),
                 ("what is deep learning", "learning with neural networks"), ("bye", "see you")]
questions = [q for q, _ in conversations]
vectorize = TextVectorization(output_sequence_length=5)
vectorize.adapt(questions)
X = vectorize(questions)
y = np.arange(len(questions))

model = tf.keras.Sequential([
    tf.keras.Input(shape=(5,)),
    Embedding(len(vectorize.get_vocabulary()), 16),
    LSTM(16),
    Dense(len(questions), activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(X, y, epochs=200, verbose=0)


def chatbot_response(text):
    i = int(np.argmax(model.predict(vectorize([text]), verbose=0)))
    return conversations[i][1]


while True:
    q = input("You: ")
    if q == "exit":
        break
    print("Bot:", chatbot_response(q))
