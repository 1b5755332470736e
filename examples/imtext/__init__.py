"""Image-text examples (Twitter2015, Sarcasm): datasets, the ResNet50 + BERT model, fixtures."""
