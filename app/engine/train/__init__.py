"""Building blocks for training through time (issue 13), pure numpy, no web imports:
``optimizers`` (torch.optim's update rules over a dict of named float64 arrays) and
``tasks`` (deterministic training sets)."""
