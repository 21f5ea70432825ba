"""Amaranth gateware of the learner, generated from :class:`nfloop.model.LearnerConfig`."""
