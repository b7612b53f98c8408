"""Building blocks for training through time (issue 13), pure numpy, no web imports:
``optimizers`` (torch.optim's update rules over a dict of named float64 arrays), ``clipping``
(torch.nn.utils' clip_grad_norm_ / clip_grad_value_) and ``tasks`` (deterministic training sets)."""
