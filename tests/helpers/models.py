"""Settings of the generated test models."""
from __future__ import annotations

RGB_CONFIG = {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
              "labels": ["cat", "dog", "bird", "fish", "frog"]}
"""model-config.json of the RGB test model (ImageNet normalisation, five labels)."""
