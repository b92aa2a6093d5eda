"""The interpolated smoothers as models: `kn{N}`, `wb{N}`, `abs{N}`."""

from __future__ import annotations

from .interpolated import InterpolatedNgram
from .smoothing import absolute, kneser_ney, witten_bell


class KneserNey(InterpolatedNgram):
    """Interpolated modified Kneser-Ney, estimated as KenLM's lmplz does."""

    method = "kn"

    @staticmethod
    def estimate(counts, config):
        return kneser_ney(counts, config.discount_fallback)


class WittenBell(InterpolatedNgram):
    method = "wb"

    @staticmethod
    def estimate(counts, config):
        return witten_bell(counts)


class AbsoluteDiscount(InterpolatedNgram):
    method = "abs"

    @staticmethod
    def estimate(counts, config):
        return absolute(counts)
