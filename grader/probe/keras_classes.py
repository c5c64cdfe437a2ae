"""Keras' own classes, by name: what a model's JSON may name for the host to hand it to a
clean sandbox (grader/trusted.py), and what the probe's export takes as describable by JSON."""

from __future__ import annotations

from typing import Any

# Keras' own layer, initializer, regularizer, constraint and model classes (Keras 3 and
# tf-keras). Not Lambda (it carries code) nor anything a program defines itself. __keras_tensor__
# is how a functional model's JSON names the tensor one layer hands the next.
KERAS_CLASSES = frozenset("""
AbstractRNNCell Activation ActivityRegularization AdaptiveAveragePooling1D AdaptiveAveragePooling2D
AdaptiveAveragePooling3D AdaptiveMaxPooling1D AdaptiveMaxPooling2D AdaptiveMaxPooling3D Add
AdditiveAttention AlphaDropout Attention AugMix AutoContrast Average AveragePooling1D AveragePooling2D
AveragePooling3D BatchNormalization Bidirectional CategoryEncoding CenterCrop Concatenate Constant
Constraint Conv1D Conv1DTranspose Conv2D Conv2DTranspose Conv3D Conv3DTranspose ConvLSTM1D ConvLSTM2D
ConvLSTM3D Cropping1D Cropping2D Cropping3D CutMix DTypePolicy Dense DepthwiseConv1D DepthwiseConv2D
Discretization Dot Dropout ELU EinsumDense Embedding Equalization Flatten FloatDTypePolicy Functional GRU
GRUCell GaussianDropout GaussianNoise GlobalAveragePooling1D GlobalAveragePooling2D GlobalAveragePooling3D
GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D GlorotNormal GlorotUniform GroupNormalization
GroupedQueryAttention HeNormal HeUniform Identity InputLayer IntegerLookup L1 L1L2 L2 LSTM LSTMCell
LayerNormalization LeakyReLU LecunNormal LecunUniform LocallyConnected1D LocallyConnected2D Masking
MaxNorm MaxPooling1D MaxPooling2D MaxPooling3D Maximum Minimum MinMaxNorm Model MultiHeadAttention
Multiply NonNeg Normalization Ones Orthogonal OrthogonalRegularizer PReLU Permute Policy
RMSNormalization RNN RadialConstraint RandomBrightness RandomContrast RandomCrop RandomFlip RandomHeight
RandomNormal RandomRotation RandomTranslation RandomUniform RandomWidth RandomZoom ReLU RepeatVector
Rescaling Reshape Resizing Sequential SeparableConv1D SeparableConv2D SimpleRNN SimpleRNNCell Softmax
SpatialDropout1D SpatialDropout2D SpatialDropout3D StackedRNNCells Subtract ThresholdedReLU
TimeDistributed TruncatedNormal UnitNorm UnitNormalization UpSampling1D UpSampling2D UpSampling3D
VarianceScaling ZeroPadding1D ZeroPadding2D ZeroPadding3D Zeros __tuple__ __numpy__ __tensor__
__keras_tensor__
""".split())


def keras_classes(config: Any) -> set[str]:
    """Every class named anywhere in a Keras config (a model's JSON, parsed)."""
    if isinstance(config, dict):
        found = {str(config["class_name"])} if "class_name" in config else set()
        return found.union(*(keras_classes(v) for v in config.values()))
    if isinstance(config, list):
        return set().union(*(keras_classes(v) for v in config))
    return set()


# Layers keras.applications defines for two of its models (ConvNeXt, InceptionResNetV2), taken
# only for a keras.applications export and only from the module Keras defines them in.
APPLICATION_CLASSES = {"LayerScale": "keras.src.applications.convnext",
                       "CustomScaleLayer": "keras.src.applications.inception_resnet_v2"}


def misplaced_application_classes(config: Any) -> set[str]:
    """APPLICATION_CLASSES named anywhere in a config with another module than Keras' own."""
    if isinstance(config, dict):
        name = config.get("class_name")
        found = {str(name)} if name in APPLICATION_CLASSES and config.get("module") != APPLICATION_CLASSES[name] \
            else set()
        return found.union(*(misplaced_application_classes(v) for v in config.values()))
    if isinstance(config, list):
        return set().union(*(misplaced_application_classes(v) for v in config))
    return set()
