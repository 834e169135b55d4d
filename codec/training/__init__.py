"""Pieces every trainable codec shares: the train/validation split and augmented crops."""
