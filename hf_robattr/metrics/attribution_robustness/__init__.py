"""The ``attribution_robustness`` evaluate module (its script is loaded by ``evaluate.load``)."""
