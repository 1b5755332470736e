"""Audio-video example: datasets (CREMA-D, Kinetics-Sounds, VGGSound layouts), audio, ResNet18
encoders and demo data."""
