"""Image-text examples (Twitter2015, Sarcasm): datasets, ResNet50 + BERT model, demo data."""
