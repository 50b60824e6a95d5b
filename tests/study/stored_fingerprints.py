"""The (softmax, kernel) fingerprints of every arm of the committed scales, as the runs stored for them carry them.

A field added to ``ArmProtocol`` must leave them unchanged for every arm that does not set it, or the stored runs
would no longer be found. Computed on main before ``pretrained_layers`` (b82431d) and ``min_fit_examples``
(b9d0d6c) existed; ci's minilm arm had these before it was truncated to 2 layers and converted on one prose source.
"""

STORED_FINGERPRINTS = {
    ("ci", "vit"): ("5a20da889750", "5a20da889750"),
    ("ci", "digits"): ("d310c1b33349", "d310c1b33349"),
    ("ci", "minilm"): ("3432ad39f7f9", "ec3cd9fb5d9e"),
    ("cpu", "vit"): ("e0e482e9bf8c", "e0e482e9bf8c"),
    ("cpu", "vit_budget"): ("2254d2b2acff", "2254d2b2acff"),
    ("cpu", "minilm"): ("fd9f104404f1", "2ae10864f012"),
    ("cpu_v2", "vit"): ("9c12c168d3a5", "9c12c168d3a5"),
    ("cpu_v2", "digits"): ("287bc325eda0", "287bc325eda0"),
    ("cpu_v2", "minilm"): ("cfab8d355b00", "7596e2bced2f"),
    ("gpu", "vit"): ("d71454c8a8e9", "86686b05e4f8"),
    ("gpu", "text"): ("418cda571958", "7cf423e2ea1b"),
}
