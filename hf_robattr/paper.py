"""The paper this library implements (Mehrpanah et al., ICML 2026): its address and BibTeX entry, the one home
that the model cards and the evaluate metric cite from."""

__all__ = ["PAPER_BIBTEX", "PAPER_URL"]

PAPER_URL = "https://arxiv.org/abs/2605.29983"

PAPER_BIBTEX = """@inproceedings{mehrpanah2026improving,
  title     = {Improving Adversarial Robustness of Attribution via Implicit Regularization},
  author    = {Mehrpanah, Amir and Gamba, Matteo and Azizpour, Hossein},
  booktitle = {International Conference on Machine Learning (ICML)},
  year      = {2026},
  eprint    = {2605.29983},
  archivePrefix = {arXiv}
}"""
