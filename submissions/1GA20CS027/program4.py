"""
Deep Learning Lab (20CSEL76) - Program 4
Improve the CNN of Program 3 by tuning hyperparameters
Name: Karthik Hegde    USN: 1GA20CS027

Changes compared to program 3:
  - BatchNormalization after every conv layer
  - Dropout (0.25 after conv blocks, 0.4 before output)
  - L2 weight decay on the dense layer
  - Adam learning rate tuned (tried 1e-2, 1e-3, 5e-4 -> 1e-3 best)
  - ReduceLROnPlateau + EarlyStopping callbacks
  - smaller batch size (128 -> 64)
"""
import keras
from keras import layers, regularizers

keras.utils.set_random_seed(42)

NUM_CLASSES = 10
LR = 1e-3
BATCH_SIZE = 64
EPOCHS = 25

(x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
y_train = keras.utils.to_categorical(y_train, NUM_CLASSES)
y_test = keras.utils.to_categorical(y_test, NUM_CLASSES)
print(x_train.shape, y_train.shape, x_test.shape, y_test.shape)


def conv_bn(x, filters):
    x = layers.Conv2D(filters, 3, padding="same")(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.Activation("relu")(x)


inputs = keras.Input(shape=(32, 32, 3))
x = conv_bn(inputs, 32)
x = conv_bn(x, 32)
x = layers.MaxPooling2D(2)(x)
x = layers.Dropout(0.25)(x)
x = conv_bn(x, 64)
x = conv_bn(x, 64)
x = layers.MaxPooling2D(2)(x)
x = layers.Dropout(0.25)(x)
x = layers.Flatten()(x)
x = layers.Dense(256, activation="relu", kernel_regularizer=regularizers.l2(1e-4))(x)
x = layers.Dropout(0.4)(x)
outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
model = keras.Model(inputs, outputs, name="cifar_cnn_tuned")

model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=LR),
    loss="categorical_crossentropy",
    metrics=["accuracy"],
)

callbacks = [
    keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, verbose=1),
    keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True),
]

history = model.fit(
    x_train, y_train,
    batch_size=BATCH_SIZE,
    epochs=EPOCHS,
    validation_split=0.1,
    callbacks=callbacks,
)

print("Best val accuracy: %.4f" % max(history.history["val_accuracy"]))
score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", round(score[0], 4))
print("Test accuracy: %.2f%%" % (score[1] * 100))
