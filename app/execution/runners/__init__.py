"""Runners turn one claimed execution into work: a local command or an HTTP forward."""
