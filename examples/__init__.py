"""Runnable examples of bss-sampler; ``examples.common`` holds what they share."""
