"""seqkd: sequence-level knowledge distillation for neural machine translation (Kim & Rush, 2016)."""
__version__ = "0.1.0"
