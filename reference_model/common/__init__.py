"""Code both training recipes share: training utilities (:mod:`reference_model.common.training`)."""
