"""Vision building blocks of the image-text and tri-modal examples, in plain torch and PIL.

``resnet`` (ResNet50), ``i3d`` (Inception-3D), ``weights`` (local ``.pth`` loading),
``transforms`` (image and clip transforms, ImageNet normalisation) and ``video`` (OpenCV
reading and writing, Farneback optical flow). torchvision is deliberately not used.
"""
