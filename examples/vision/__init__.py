"""Vision building blocks of the image-text and tri-modal examples, in plain torch and PIL.

``resnet`` (ResNet50), ``i3d`` (Inception-3D), ``weights`` (pretrained weights from a name, a
hash-checked URL or a local file; the random-init warning), ``transforms`` (image and clip
transforms, ImageNet or CLIP normalisation), ``randaugment`` (the released Sarcasm code's
RandomAugment policy) and ``video`` (OpenCV reading and writing, Farneback optical flow).
torchvision is deliberately not used.
"""
