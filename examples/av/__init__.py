"""Audio-video data (CREMA-D, Kinetics-Sounds, VGGSound layouts) and ResNet18 encoders."""
