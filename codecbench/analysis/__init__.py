"""Rate–distortion analysis of stored results: RD curves, Bjøntegaard deltas, rate matching, CompressAI JSON.

Everything here is a pure function of rows read from a results store
(:class:`codecbench.store.ResultsStore`); nothing runs a codec and nothing
imports torch. :mod:`.curves` is the one definition of an RD curve;
:mod:`.bjontegaard`, :mod:`.ratematch` and :mod:`.compressai` build on it.
"""
